"""The personal-account ledger (docs/guide.md §3.4).

Double-entry and append-only: money moves only as a ``LedgerTransfer`` with two
``LedgerEntry`` rows (one negative, one positive) that sum to zero. Each
account keeps ``balance_fen`` (= the sum of its entries) and ``held_fen``
(= the sum of its authorized, unresolved payments) next to the entries, updated
in the same transaction under the account's row lock; `qinqing ledger
reconcile` proves both. Amounts are integer fen everywhere.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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


class AccountKind(StrEnum):
    personal = "personal"  # an employee's 个人账户
    institution = "institution"  # what a 定点医药机构 has been paid
    funding = "funding"  # contributions received from outside, per region (goes negative)


class PaymentStatus(StrEnum):
    authorized = "authorized"  # a hold on the holder's account
    settled = "settled"
    voided = "voided"
    expired = "expired"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("held_fen >= 0", name="held_not_negative"),
        CheckConstraint("allow_negative OR balance_fen - held_fen >= 0", name="no_overdraft"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"), unique=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    held_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerTransfer(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="positive"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    debit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # contribution | payment
    payment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    contribution_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contributions.id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account_created", "account_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transfers.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # + credit, - debit
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


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


class Contribution(Base):
    """One person's monthly contribution as posted by a collector (税务/社保)."""

    __tablename__ = "contributions"
    __table_args__ = (
        UniqueConstraint("person_id", "period", name="uq_contributions_person_period"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
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


class MonthClosing(Base):
    __tablename__ = "month_closings"

    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    marked_arrears: Mapped[int] = mapped_column(Integer)
