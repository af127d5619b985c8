"""Reconciliation: every cached balance and hold proved against the entries and
the open payments (`qinqing ledger reconcile`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qinqing.contributions.models import Contribution
from qinqing.kit.db import Database
from qinqing.ledger.accounts import funding_code, institution_code, resident_fund_code
from qinqing.ledger.models import LedgerAccount, LedgerEntry, LedgerSystemAccount
from qinqing.payments.models import Payment, PaymentStatus
from qinqing.resident.models import ResidentContribution


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
    """Prove, for every personal account, ``balance == sum(entries)`` and ``held ==
    sum(open holds)`` and no overdraft; for every system account, ``balance ==
    sum(entries) − pending`` (what the clearing step has not posted yet); that
    every entry names an account that exists; and that all entries sum to zero.

    Meaningful only on a session that sees one state throughout: a snapshot
    (:func:`reconcile_snapshot`), or a database nobody writes to meanwhile."""
    sums = {
        account_id: int(total or 0)
        for account_id, total in session.execute(
            select(
                LedgerEntry.account_id, func.coalesce(func.sum(LedgerEntry.amount_fen), 0)
            ).group_by(LedgerEntry.account_id)
        )
    }
    holds = dict(
        session.execute(
            select(Payment.account_id, func.coalesce(func.sum(Payment.amount_fen), 0))
            .where(Payment.status == PaymentStatus.authorized.value)
            .group_by(Payment.account_id)
        ).all()
    )
    pending: dict[str, int] = {}
    for client_id, total in session.execute(
        select(Payment.client_id, func.coalesce(func.sum(Payment.settled_fen), 0))
        .where(Payment.status == PaymentStatus.settled.value, Payment.cleared_at.is_(None))
        .group_by(Payment.client_id)
    ):
        pending[institution_code(client_id)] = int(total or 0)
    for region_code, total in session.execute(
        select(Contribution.region_code, func.coalesce(func.sum(Contribution.credited_fen), 0))
        .where(Contribution.cleared_at.is_(None))
        .group_by(Contribution.region_code)
    ):
        pending[funding_code(region_code)] = -int(total)
    for region_code, total in session.execute(
        select(
            ResidentContribution.region_code,
            func.coalesce(func.sum(ResidentContribution.amount_fen), 0),
        )
        .where(ResidentContribution.cleared_at.is_(None))
        .group_by(ResidentContribution.region_code)
    ):
        pending[resident_fund_code(region_code)] = int(total)
    out: list[Discrepancy] = []
    known: set[object] = set()
    for acct in session.execute(select(LedgerAccount).order_by(LedgerAccount.code)).scalars():
        known.add(acct.id)
        computed = sums.get(acct.id, 0)
        if acct.balance_fen != computed:
            out.append(Discrepancy(acct.code, "balance", acct.balance_fen, computed))
        held = int(holds.get(acct.id, 0))
        if acct.held_fen != held:
            out.append(Discrepancy(acct.code, "held", acct.held_fen, held))
        if acct.balance_fen - acct.held_fen < 0:
            out.append(Discrepancy(acct.code, "overdraft", acct.balance_fen - acct.held_fen, 0))
    for sys_acct in session.execute(
        select(LedgerSystemAccount).order_by(LedgerSystemAccount.code)
    ).scalars():
        known.add(sys_acct.id)
        computed = sums.get(sys_acct.id, 0) - pending.get(sys_acct.code, 0)
        if sys_acct.balance_fen != computed:
            out.append(Discrepancy(sys_acct.code, "balance", sys_acct.balance_fen, computed))
    # The entries' accounts have no foreign key (one side lives in a reference
    # table): an entry naming no account is found here.
    for account_id in sorted(set(sums) - known, key=str):
        out.append(Discrepancy(f"unknown:{account_id}", "ledger", sums[account_id], 0))
    total = int(
        session.execute(select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0))).scalar_one()
    )
    if total != 0:
        out.append(Discrepancy("*", "ledger", total, 0))
    return out
