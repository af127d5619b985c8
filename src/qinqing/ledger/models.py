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
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.db import Base, UTCDateTime, new_id


class AccountKind(StrEnum):
    personal = "personal"  # an employee's 个人账户
    institution = "institution"  # what a 定点医药机构 has been paid
    funding = "funding"  # contributions received from outside, per region (goes negative)


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
