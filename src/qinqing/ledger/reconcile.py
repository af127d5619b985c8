"""Reconciliation: every cached balance and hold proved against the entries and
the open payments (`qinqing ledger reconcile`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qinqing.db import Database
from qinqing.ledger.models import LedgerAccount, LedgerEntry
from qinqing.payments.models import Payment, PaymentStatus


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
