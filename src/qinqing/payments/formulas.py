"""The payment formulas that a write and a read both need, once, as SQL expressions:
an open hold, an overdue hold, and a link's yearly usage. The engine
(``payments.engine``), the statements, the unbind check and the reconciliation
all use these; the SQL fast path (``fast_path.sql``) repeats them for speed and
the differential test holds it to them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, Uuid, and_, case, func, or_, select
from sqlalchemy.orm import Session

from qinqing.payments.bulk import any_of
from qinqing.payments.models import Payment, PaymentStatus


def open_hold(now: datetime) -> ColumnElement[bool]:
    """A payment that still holds money at ``now``: authorized and not yet expired."""
    return and_(Payment.status == PaymentStatus.authorized.value, Payment.expires_at > now)


def overdue_hold(now: datetime) -> ColumnElement[bool]:
    """An authorized payment past its expiry, not yet released (the next lock of its
    account, or ``qinqing payments expire``, releases it)."""
    return and_(Payment.status == PaymentStatus.authorized.value, Payment.expires_at <= now)


def counts_toward_limit(now: datetime) -> ColumnElement[bool]:
    """What uses a link's yearly limit: settled payments and open holds (an overdue
    hold no longer does, released or not)."""
    return or_(Payment.status == PaymentStatus.settled.value, open_hold(now))


def used_amount() -> ColumnElement[int]:
    """How much of the limit a counted payment uses: the settled amount, or the held one."""
    return case(
        (Payment.status == PaymentStatus.settled.value, Payment.settled_fen),
        else_=Payment.amount_fen,
    )


def yearly_usage(
    session: Session, links: Iterable[tuple[uuid.UUID, uuid.UUID]], year: int, now: datetime
) -> dict[uuid.UUID, int]:
    """Link id -> fen used this ``year`` at ``now``, for (holder id, link id) pairs."""
    pairs = sorted(set(links), key=str)
    if not pairs:
        return {}
    usage = {link_id: 0 for _, link_id in pairs}
    holders = sorted({h for h, _ in pairs}, key=str)
    for link_id, used in session.execute(
        select(Payment.link_id, func.coalesce(func.sum(used_amount()), 0))
        .where(
            any_of(session, Payment.holder_id, holders, Uuid()),
            any_of(session, Payment.link_id, list(usage), Uuid()),
            Payment.year == year,
            counts_toward_limit(now),
        )
        .group_by(Payment.link_id)
    ):
        usage[link_id] = int(used)
    return usage


def held_at(session: Session, holder_id: uuid.UUID, account_id: uuid.UUID, now: datetime) -> int:
    """What an account of the holder's (personal or a quota) holds at ``now``: its open
    holds, an overdue one not counted though not yet released. Reads use this rather
    than the cached ``held_fen``, which keeps an overdue hold until the next lock."""
    held = session.execute(
        select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
            Payment.holder_id == holder_id, Payment.account_id == account_id, open_hold(now)
        )
    ).scalar_one()
    return int(held)
