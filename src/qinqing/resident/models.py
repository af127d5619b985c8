"""Resident contributions paid from a holder's personal account (共济缴费).

``resident_contributions`` is kept with the holder (who pays), next to the link
and the ledger transfer it names. ``resident_cover_years`` is the look-up that
makes "paid once per member and cover year" global: two different holders of
the same member race on its primary key, kept with the member.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class ResidentContribution(Base):
    """One cover year of a member's 城乡居民医保, paid by the holder of a mutual-aid link.

    Never changed by an unbind: it is money already remitted. ``cleared_at`` is set
    by the clearing step when the member region's resident fund is credited."""

    __tablename__ = "resident_contributions"
    __table_args__ = (
        UniqueConstraint("holder_id", "member_id", "year", name="uq_resident_contributions_year"),
        ForeignKeyConstraint(
            ["holder_id", "link_id"], ["family_links.holder_id", "family_links.id"]
        ),
        ForeignKeyConstraint(
            ["holder_id", "transfer_id"], ["ledger_transfers.person_id", "ledger_transfers.id"]
        ),
        # The collector's list: a region's contributions of one cover year, oldest first.
        Index("ix_resident_contributions_region_year", "region_code", "year", "created_at"),
        Index("ix_resident_contributions_member", "member_id", "year"),
        Index(
            "ix_resident_contributions_uncleared",
            "region_code",
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    link_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # No foreign key: the member lives on another shard.
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The member's region when paid: whose policy priced it, whose fund receives it,
    # whose collector lists it.
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    year: Mapped[int] = mapped_column(Integer)  # the cover year
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    cover_starts_on: Mapped[date] = mapped_column(Date)
    late: Mapped[bool] = mapped_column(Boolean)
    transfer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    verification_method: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the registry said the member left the resident scheme (another scheme,
    # terminated or deceased), for a cover year not over then (``resident.registry``).
    member_left_scheme_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ResidentCoverYear(Base):
    """A member's paid cover year: the global "once per member and year" (on the
    member's shard; the first insert wins, a concurrent one waits and is refused)."""

    __tablename__ = "resident_cover_years"

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    contribution_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
