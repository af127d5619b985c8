"""What the parties of a link see of its payments: this year's payments with the
yearly limit used (``GET /family/links/{id}/payments``), and the open holds that
block an unbinding, each with the institution that placed it.

Reads never write: a hold past its expiry is simply not counted (it is
released for good the next time the account is locked, or by
``qinqing payments expire``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.auth.models import ApiClient
from qinqing.family.models import FamilyLink
from qinqing.payments.formulas import open_hold, yearly_usage
from qinqing.payments.models import Payment
from qinqing.payments.rules import local_year


@dataclass(frozen=True, slots=True)
class LinkPayments:
    year: int
    yearly_limit_fen: int | None
    used_fen: int
    payments: list[Payment]

    @property
    def remaining_fen(self) -> int | None:
        if self.yearly_limit_fen is None:
            return None
        return max(self.yearly_limit_fen - self.used_fen, 0)


def link_payments(session: Session, link: FamilyLink, now: datetime) -> LinkPayments:
    """This year's payments on the link and how much of its yearly limit they use
    (settled amounts plus holds that have not expired)."""
    year = local_year(now)
    payments = list(
        session.execute(
            select(Payment)
            .where(
                Payment.holder_id == link.holder_id,
                Payment.link_id == link.id,
                Payment.year == year,
            )
            .order_by(Payment.created_at.desc(), Payment.id.desc())
        ).scalars()
    )
    used = yearly_usage(session, [(link.holder_id, link.id)], year, now)[link.id]
    return LinkPayments(year, link.mutual_aid_yearly_limit_fen, used, payments)


@dataclass(frozen=True, slots=True)
class LinkHold:
    """An open hold on a link as the person sees it: the bill and who holds it."""

    payment_id: uuid.UUID
    amount_fen: int
    institution: str
    created_at: datetime
    expires_at: datetime


def link_open_holds(session: Session, link: FamilyLink, now: datetime) -> list[LinkHold]:
    """The open holds (UNSETTLED_PAYMENTS) on a link, each with the institution that
    placed it, so the person knows whom to ask to settle or void it."""
    rows = session.execute(
        select(
            Payment.id, Payment.amount_fen, ApiClient.name, Payment.created_at, Payment.expires_at
        )
        .join(ApiClient, ApiClient.id == Payment.client_id)
        .where(Payment.holder_id == link.holder_id, Payment.link_id == link.id, open_hold(now))
        .order_by(Payment.created_at, Payment.id)
    ).all()
    return [LinkHold(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows]
