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
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class PaymentStatus(StrEnum):
    authorized = "authorized"  # a hold on the holder's account
    settled = "settled"
    voided = "voided"
    expired = "expired"


class Payment(Base):
    """A mutual-aid payment: authorize (hold) → settle or void, each exactly once."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="positive"),
        ForeignKeyConstraint(
            ["holder_id", "link_id"], ["family_links.holder_id", "family_links.id"]
        ),
        ForeignKeyConstraint(
            ["holder_id", "account_id"], ["ledger_accounts.person_id", "ledger_accounts.id"]
        ),
        Index("ix_payments_link_year", "holder_id", "link_id", "year"),
        # Open holds only, for the expiry job; a resolved payment leaves it.
        Index(
            "ix_payments_open_expiry",
            "expires_at",
            sqlite_where=text("status = 'authorized'"),
            postgresql_where=text("status = 'authorized'"),
        ),
        # What the clearing step has still to credit to the institutions: small.
        Index(
            "ix_payments_uncleared",
            "client_id",
            sqlite_where=text("status = 'settled' AND cleared_at IS NULL"),
            postgresql_where=text("status = 'settled' AND cleared_at IS NULL"),
        ),
    )

    # The holder (who pays) first: a payment lives on the holder's shard.
    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"))
    # Unique per client through the look-up table ``payment_references``.
    reference: Mapped[str] = mapped_column(String(64))
    link_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # No foreign key: the member lives on another shard (the link names them).
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    settled_fen: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    year: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the clearing step credited the institution's account with it.
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PaymentReference(Base):
    """Look-up from an institution's own reference to its payment: where the
    reference's uniqueness per institution lives (distributed by the reference)."""

    __tablename__ = "payment_references"

    client_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    payment_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class PaymentKey(Base):
    """Look-up from a payment's id to its holder, so settle and void (which name only
    the payment) lock it on its shard."""

    __tablename__ = "payment_keys"

    payment_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    holder_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[str] = mapped_column(String(40))
