"""Mutual-aid payments by designated institutions (docs/guide.md §1 journey 4, §3.4):
authorize (a hold) → settle (the same or a smaller amount) or void, each exactly
once; holds expire after the region policy's ``hold_expiry_hours``.

One engine, :func:`qinqing.payments.engine.execute`, runs a list of operations in
one transaction with a fixed number of round trips whatever the list's length
(set-based reads, locks taken in one statement per table, bulk writes). The
single-operation calls here are a list of one, so the batch and the single calls
cannot disagree. The operations and outcomes are ``payments.ops``; the formulas
a read shares with the engine (open hold, yearly usage) ``payments.formulas``.

Locks are taken in the global order (``docs/ledger.md`` "Lock order") —
family links (``FOR SHARE``), then ledger accounts (``FOR NO KEY UPDATE``,
ascending id), then payment rows — so these transactions cannot deadlock one
another or the other writers, and an authorization's ``FOR SHARE`` on the link
conflicts with an unbind's ``FOR NO KEY UPDATE``: the two never both succeed.
Two authorizations on one account serialize on its row lock, so they
cannot overdraw it. The payments table and the ledger's entries are the
append-only record of every money movement, which keeps the global audit chain
off this hot path (docs/guide.md §7: the audit chain is a serialization point).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.family.models import FamilyLink
from qinqing.kit.locking import locked
from qinqing.ledger.accounts import lock_accounts
from qinqing.ledger.models import LedgerAccount
from qinqing.payments.bulk import update_by_key
from qinqing.payments.engine import PAY_KEY
from qinqing.payments.engine import execute as execute
from qinqing.payments.formulas import open_hold, overdue_hold
from qinqing.payments.models import Payment, PaymentStatus

# The operations and outcomes are this module's API too (``payments.Authorize``, ...).
from qinqing.payments.ops import MAX_BATCH as MAX_BATCH
from qinqing.payments.ops import STATUS_OF as STATUS_OF
from qinqing.payments.ops import Authorize as Authorize
from qinqing.payments.ops import Op as Op
from qinqing.payments.ops import Outcome as Outcome
from qinqing.payments.ops import Settle as Settle
from qinqing.payments.ops import Void as Void
from qinqing.runtime import Runtime

# --- the single-operation calls ----------------------------------------------


def authorize(session: Session, rt: Runtime, principal: Principal, op: Authorize) -> Outcome:
    return execute(session, rt, principal, [op])[0].raise_if_refused(commit=True)


def settle(session: Session, rt: Runtime, principal: Principal, op: Settle) -> Outcome:
    return execute(session, rt, principal, [op])[0].raise_if_refused(commit=True)


def void(session: Session, rt: Runtime, principal: Principal, op: Void) -> Outcome:
    return execute(session, rt, principal, [op])[0].raise_if_refused(commit=True)


def expire_holds(session: Session, now: datetime, limit: int = 10_000) -> int:
    """`qinqing payments expire`: release overdue holds; how many were expired.

    The holders are found without a lock, then their accounts are locked before
    their payments (the global order); payments another transaction holds are
    left to it.
    """
    holders = sorted(
        session.execute(
            select(Payment.holder_id).where(overdue_hold(now)).distinct().limit(limit)
        ).scalars(),
        key=str,
    )
    if not holders:
        return 0
    return release_overdue(session, lock_accounts(session, holders), now)


def release_overdue(
    session: Session, accounts: dict[uuid.UUID, LedgerAccount], now: datetime
) -> int:
    """Release the overdue holds on accounts the caller holds locked (``accounts`` by
    account id; the global order: accounts, then their payments); how many. A write
    that debits an account at once (a resident contribution, a quota top-up) calls it
    first, so a forgotten hold never blocks money that is in fact available."""
    holders = sorted({a.person_id for a in accounts.values()}, key=str)
    if not holders:
        return 0
    due = overdue_hold(now) & Payment.account_id.in_(list(accounts))
    overdue = locked(
        session,
        select(Payment.holder_id, Payment.id, Payment.account_id, Payment.amount_fen)
        .order_by(Payment.holder_id, Payment.id)
        .with_for_update(key_share=True, skip_locked=True),
        Payment.holder_id.in_(holders) & due,
        [(Payment.holder_id == h) & due for h in holders],
    )
    if not overdue:
        return 0
    update_by_key(
        session,
        Payment,
        [
            {
                "holder_id": row.holder_id,
                "id": row.id,
                "status": PaymentStatus.expired.value,
                "resolved_at": now,
            }
            for row in overdue
        ],
        PAY_KEY,
        {"status": "text", "resolved_at": "timestamptz"},
    )
    for row in overdue:
        accounts[row.account_id].held_fen -= row.amount_fen
    return len(overdue)


def open_holds_for_link(session: Session, link: FamilyLink, now: datetime) -> tuple[int, int]:
    """(count, total_fen) of authorized, unexpired payments on a link: what the unbind
    check reports as UNSETTLED_PAYMENTS."""
    count, total = session.execute(
        select(func.count(Payment.id), func.coalesce(func.sum(Payment.amount_fen), 0)).where(
            Payment.holder_id == link.holder_id, Payment.link_id == link.id, open_hold(now)
        )
    ).one()
    return int(count), int(total)
