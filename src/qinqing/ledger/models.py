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
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class AccountKind(StrEnum):
    personal = "personal"  # an employee's 个人账户
    institution = "institution"  # what a 定点医药机构 has been paid
    funding = "funding"  # contributions received from outside, per region (goes negative)
    # 居民医保 contributions paid from personal accounts (共济缴费), per region: what is
    # owed to the region's resident fund (城乡居民医保基金); it only ever receives.
    resident_fund = "resident_fund"
    # A cross-region link's 共济额度: the holder's money set aside for one member (a
    # row of ``ledger_accounts`` on the holder's shard, named by ``link_id``).
    quota = "quota"


PERSONAL_SQL = "kind = 'personal'"
QUOTA_SQL = "kind = 'quota'"


class LedgerAccount(Base):
    """A person's 个人账户 and the 共济额度 of the person's cross-region links, on the
    person's shard. ``balance_fen`` and ``held_fen`` are changed under the account's
    row lock in the transaction that posts or holds. One personal account per person
    and one quota per link (partial unique indexes)."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("held_fen >= 0", name="held_not_negative"),
        CheckConstraint("allow_negative OR balance_fen - held_fen >= 0", name="no_overdraft"),
        Index(
            "uq_ledger_accounts_personal",
            "person_id",
            unique=True,
            sqlite_where=text(PERSONAL_SQL),
            postgresql_where=text(PERSONAL_SQL),
        ),
        Index(
            "uq_ledger_accounts_quota",
            "person_id",
            "link_id",
            unique=True,
            sqlite_where=text(QUOTA_SQL),
            postgresql_where=text(QUOTA_SQL),
        ),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    held_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A quota's link (the holder's ``family_links`` row); None for a personal account.
    link_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class LedgerSystemAccount(Base):
    """An institution's receiving account or a region's funding account: a reference
    table, read everywhere. No payment or contribution writes it: their entries are
    appended on the person's shard and the clearing step (``ledger.clearing``) adds
    them to ``balance_fen`` in batches, so ``balance_fen`` = the sum of its cleared
    entries and every other entry of it is pending clearing."""

    __tablename__ = "ledger_system_accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerTransfer(Base):
    """One money movement: two entries that sum to zero. Kept on the shard of the
    person whose account it touches (the holder, for a payment). The account
    columns have no foreign key: one of the two is a system account (a reference
    table), the other the person's own; ``post_transfer`` names both."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="positive"),
        UniqueConstraint("person_id", "payment_id", name="uq_ledger_transfers_payment"),
        UniqueConstraint("person_id", "contribution_id", name="uq_ledger_transfers_contribution"),
        ForeignKeyConstraint(["person_id", "payment_id"], ["payments.holder_id", "payments.id"]),
        ForeignKeyConstraint(
            ["person_id", "contribution_id"], ["contributions.person_id", "contributions.id"]
        ),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    debit_account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    credit_account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # contribution | payment | resident
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    contribution_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["person_id", "transfer_id"], ["ledger_transfers.person_id", "ledger_transfers.id"]
        ),
        Index("ix_ledger_entries_account_created", "account_id", "created_at"),
        Index("ix_ledger_entries_transfer", "person_id", "transfer_id"),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    transfer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # + credit, - debit
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
