"""Ledger accounts and the one way money moves: ``post_transfer``.

Callers lock the accounts a transfer touches (``lock_accounts``, always in
ascending id order so two transactions cannot deadlock) and then post; the
transfer, its two entries and both cached balances change in the same
transaction. Entries are never updated or deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from qinqing.db import Database, insert_ignore, new_id
from qinqing.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransfer,
    Payment,
    PaymentStatus,
)


def personal_code(person_id: uuid.UUID) -> str:
    return f"personal:{person_id}"


def institution_code(client_id: str) -> str:
    return f"institution:{client_id}"


def funding_code(region_code: str) -> str:
    return f"funding:{region_code}"


def ensure_account(
    session: Session,
    *,
    code: str,
    kind: AccountKind,
    region_code: str,
    now: datetime,
    person_id: uuid.UUID | None = None,
) -> None:
    """Create the account if it does not exist (race-free on both databases)."""
    insert_ignore(
        session,
        LedgerAccount,
        {
            "id": new_id(),
            "code": code,
            "kind": kind.value,
            "person_id": person_id,
            "region_code": region_code,
            "balance_fen": 0,
            "held_fen": 0,
            "allow_negative": kind is AccountKind.funding,
            "created_at": now,
        },
    )


def lock_accounts(session: Session, codes: Iterable[str]) -> dict[str, LedgerAccount]:
    """SELECT ... FOR NO KEY UPDATE the accounts by code, in ascending id order."""
    wanted = sorted(set(codes))
    rows = (
        session.execute(
            select(LedgerAccount)
            .where(LedgerAccount.code.in_(wanted))
            .order_by(LedgerAccount.id)
            .with_for_update(key_share=True)
        )
        .scalars()
        .all()
    )
    return {a.code: a for a in rows}


def transfer_rows(
    *,
    debit_id: uuid.UUID,
    credit_id: uuid.UUID,
    amount_fen: int,
    kind: str,
    at: datetime,
    payment_id: uuid.UUID | None = None,
    contribution_id: uuid.UUID | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One transfer and its two entries (-amount, +amount) as rows: the double-entry
    shape every money movement takes, single or in bulk."""
    if amount_fen <= 0:
        raise ValueError("a transfer moves a positive amount")
    transfer_id = new_id()
    transfer = {
        "id": transfer_id,
        "debit_account_id": debit_id,
        "credit_account_id": credit_id,
        "amount_fen": amount_fen,
        "kind": kind,
        "payment_id": payment_id,
        "contribution_id": contribution_id,
        "created_at": at,
    }
    entries = [
        {
            "id": new_id(),
            "transfer_id": transfer_id,
            "account_id": account_id,
            "amount_fen": signed,
            "created_at": at,
        }
        for account_id, signed in ((debit_id, -amount_fen), (credit_id, amount_fen))
    ]
    return transfer, entries


def post_transfer(
    session: Session,
    *,
    debit: LedgerAccount,
    credit: LedgerAccount,
    amount_fen: int,
    kind: str,
    at: datetime,
    payment_id: uuid.UUID | None = None,
    contribution_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Move ``amount_fen`` from ``debit`` to ``credit``; both must be locked by the caller."""
    transfer, entries = transfer_rows(
        debit_id=debit.id,
        credit_id=credit.id,
        amount_fen=amount_fen,
        kind=kind,
        at=at,
        payment_id=payment_id,
        contribution_id=contribution_id,
    )
    # Core inserts in FK order (the ORM would not order unrelated mappers).
    session.execute(insert(LedgerTransfer).values(**transfer))
    session.execute(insert(LedgerEntry), entries)
    debit.balance_fen -= amount_fen
    credit.balance_fen += amount_fen
    transfer_id: uuid.UUID = transfer["id"]
    return transfer_id


@dataclass(frozen=True, slots=True)
class Discrepancy:
    account_code: str
    what: str  # "balance" | "held" | "overdraft" | "ledger"
    recorded_fen: int
    computed_fen: int


def reconcile_snapshot(db: Database) -> list[Discrepancy]:
    """:func:`reconcile` on one consistent snapshot (`qinqing ledger reconcile`).

    Its statements read the entries, the holds and the accounts one after the
    other; under READ COMMITTED a payment committed between two of them would
    show as a false discrepancy. A REPEATABLE READ, read-only snapshot (SQLite:
    one read transaction) sees them all as of one instant, without locking
    anything, while payments go on.
    """
    with db.snapshot() as session:
        return reconcile(session)


def reconcile(session: Session) -> list[Discrepancy]:
    """Prove ``balance == sum(entries)`` and ``held == sum(open holds)`` for every
    account, no personal overdraft, and that all entries sum to zero.

    Meaningful only on a session that sees one state throughout: a snapshot
    (:func:`reconcile_snapshot`), or a database nobody writes to meanwhile."""
    sums = dict(
        session.execute(
            select(
                LedgerEntry.account_id, func.coalesce(func.sum(LedgerEntry.amount_fen), 0)
            ).group_by(LedgerEntry.account_id)
        ).all()
    )
    holds = dict(
        session.execute(
            select(Payment.account_id, func.coalesce(func.sum(Payment.amount_fen), 0))
            .where(Payment.status == PaymentStatus.authorized.value)
            .group_by(Payment.account_id)
        ).all()
    )
    out: list[Discrepancy] = []
    for acct in session.execute(select(LedgerAccount).order_by(LedgerAccount.code)).scalars():
        computed = int(sums.get(acct.id, 0))
        if acct.balance_fen != computed:
            out.append(Discrepancy(acct.code, "balance", acct.balance_fen, computed))
        held = int(holds.get(acct.id, 0))
        if acct.held_fen != held:
            out.append(Discrepancy(acct.code, "held", acct.held_fen, held))
        if not acct.allow_negative and acct.balance_fen - acct.held_fen < 0:
            out.append(Discrepancy(acct.code, "overdraft", acct.balance_fen - acct.held_fen, 0))
    total = int(
        session.execute(select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0))).scalar_one()
    )
    if total != 0:
        out.append(Discrepancy("*", "ledger", total, 0))
    return out
