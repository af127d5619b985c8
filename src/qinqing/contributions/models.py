"""Contributions as posted by collectors, and the months closed per region."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class Contribution(Base):
    """One person's monthly contribution as posted by a collector (税务/社保)."""

    __tablename__ = "contributions"
    __table_args__ = (
        UniqueConstraint("person_id", "period", name="uq_contributions_person_period"),
        # What the clearing step has still to post to the funding accounts: small.
        Index(
            "ix_contributions_uncleared",
            "region_code",
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    period: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM
    base_fen: Mapped[int] = mapped_column(BigInteger)
    clamped_base_fen: Mapped[int] = mapped_column(BigInteger)
    personal_total_fen: Mapped[int] = mapped_column(BigInteger)
    employer_total_fen: Mapped[int] = mapped_column(BigInteger)
    credited_fen: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the clearing step debited the region's funding account with it.
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MonthClosing(Base):
    __tablename__ = "month_closings"

    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    marked_arrears: Mapped[int] = mapped_column(Integer)
