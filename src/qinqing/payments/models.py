"""Mutual-aid payments: one row per authorization, resolved once (settled, voided
or expired). An authorized row is a hold counted in its account's ``held_fen``."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.db import Base, UTCDateTime, new_id


class PaymentStatus(StrEnum):
    authorized = "authorized"  # a hold on the holder's account
    settled = "settled"
    voided = "voided"
    expired = "expired"


class Payment(Base):
    """A mutual-aid payment: authorize (hold) → settle or void, each exactly once."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("client_id", "reference", name="uq_payments_client_reference"),
        CheckConstraint("amount_fen > 0", name="positive"),
        Index("ix_payments_link_year", "link_id", "year"),
        Index("ix_payments_account_status", "account_id", "status"),
        Index("ix_payments_status_expires", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"))
    reference: Mapped[str] = mapped_column(String(64))
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("family_links.id"))
    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    settled_fen: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    year: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
