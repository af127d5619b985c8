"""What a person sees of money: the personal-account statement (``GET
/me/account/entries``), the balance on ``GET /me``, and a link's mutual-aid
payments this year (``GET /family/links/{id}/payments``).

Reads never write: a hold past its expiry is simply not counted (it is
released for good the next time the account is locked, or by
``qinqing payments expire``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from qinqing.auth.models import ApiClient
from qinqing.errors import DomainError
from qinqing.family.models import FamilyLink
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import (
    Contribution,
    LedgerAccount,
    LedgerEntry,
    LedgerTransfer,
    Payment,
    PaymentStatus,
)
from qinqing.ledger.payments import local_year
from qinqing.persons.models import Person


@dataclass(frozen=True, slots=True)
class Balance:
    has_personal_account: bool
    balance_fen: int
    held_fen: int

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.held_fen


def _open_hold(now: datetime) -> ColumnElement[bool]:
    return and_(Payment.status == PaymentStatus.authorized.value, Payment.expires_at > now)


def balance_of(session: Session, person: Person, now: datetime) -> Balance:
    account = session.execute(
        select(LedgerAccount.id, LedgerAccount.balance_fen).where(
            LedgerAccount.code == personal_code(person.id)
        )
    ).one_or_none()
    if account is None:
        return Balance(person.scheme == "employee", 0, 0)
    held = session.execute(
        select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
            Payment.account_id == account.id, _open_hold(now)
        )
    ).scalar_one()
    return Balance(True, int(account.balance_fen), int(held))


@dataclass(frozen=True, slots=True)
class StatementLine:
    id: uuid.UUID
    at: datetime
    amount_fen: int
    kind: str  # contribution | payment
    period: str | None
    payment_id: uuid.UUID | None
    member_id: uuid.UUID | None
    member_name: str | None


@dataclass(frozen=True, slots=True)
class Hold:
    payment_id: uuid.UUID
    amount_fen: int
    member_id: uuid.UUID
    member_name: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Statement:
    balance: Balance
    holds: list[Hold]
    lines: list[StatementLine]
    next_before: str | None


def statement(
    session: Session, person: Person, now: datetime, *, limit: int, before: str | None
) -> Statement:
    """Newest first, ``limit`` lines a page; ``before`` is the id of the last line seen."""
    bal = balance_of(session, person, now)
    account_id = session.execute(
        select(LedgerAccount.id).where(LedgerAccount.code == personal_code(person.id))
    ).scalar_one_or_none()
    if account_id is None:
        return Statement(bal, [], [], None)
    member = Person.__table__.alias("member")
    holds = [
        Hold(r.id, r.amount_fen, r.member_id, r.name, r.created_at, r.expires_at)
        for r in session.execute(
            select(
                Payment.id,
                Payment.amount_fen,
                Payment.member_id,
                member.c.name,
                Payment.created_at,
                Payment.expires_at,
            )
            .join(member, member.c.id == Payment.member_id)
            .where(Payment.account_id == account_id, _open_hold(now))
            .order_by(Payment.created_at.desc(), Payment.id.desc())
        )
    ]
    stmt = (
        select(
            LedgerEntry.id,
            LedgerEntry.created_at,
            LedgerEntry.amount_fen,
            LedgerTransfer.kind,
            Contribution.period,
            Payment.id.label("payment_id"),
            Payment.member_id,
            member.c.name.label("member_name"),
        )
        .join(LedgerTransfer, LedgerTransfer.id == LedgerEntry.transfer_id)
        .outerjoin(Contribution, Contribution.id == LedgerTransfer.contribution_id)
        .outerjoin(Payment, Payment.id == LedgerTransfer.payment_id)
        .outerjoin(member, member.c.id == Payment.member_id)
        .where(LedgerEntry.account_id == account_id)
    )
    if before:
        try:
            cursor_id = uuid.UUID(before)
        except ValueError:
            raise DomainError("CURSOR_INVALID", 422) from None
        cursor = session.execute(
            select(LedgerEntry.created_at).where(
                LedgerEntry.id == cursor_id, LedgerEntry.account_id == account_id
            )
        ).scalar_one_or_none()
        if cursor is None:
            raise DomainError("CURSOR_INVALID", 422)
        stmt = stmt.where(
            or_(
                LedgerEntry.created_at < cursor,
                and_(LedgerEntry.created_at == cursor, LedgerEntry.id < cursor_id),
            )
        )
    rows = session.execute(
        stmt.order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc()).limit(limit + 1)
    ).all()
    lines = [
        StatementLine(
            r.id,
            r.created_at,
            r.amount_fen,
            r.kind,
            r.period,
            r.payment_id,
            r.member_id,
            r.member_name,
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return Statement(bal, holds, lines, str(lines[-1].id) if more and lines else None)


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
            .where(Payment.link_id == link.id, Payment.year == year)
            .order_by(Payment.created_at.desc(), Payment.id.desc())
        ).scalars()
    )
    used = session.execute(
        select(
            func.coalesce(
                func.sum(
                    case(
                        (Payment.status == PaymentStatus.settled.value, Payment.settled_fen),
                        else_=Payment.amount_fen,
                    )
                ),
                0,
            )
        ).where(
            Payment.link_id == link.id,
            Payment.year == year,
            or_(Payment.status == PaymentStatus.settled.value, _open_hold(now)),
        )
    ).scalar_one()
    return LinkPayments(year, link.mutual_aid_yearly_limit_fen, int(used), payments)


@dataclass(frozen=True, slots=True)
class LinkHold:
    """An open hold on a link as the person sees it: the bill and who holds it."""

    payment_id: uuid.UUID
    amount_fen: int
    institution: str
    created_at: datetime
    expires_at: datetime


def link_open_holds(session: Session, link_id: uuid.UUID, now: datetime) -> list[LinkHold]:
    """The open holds (UNSETTLED_PAYMENTS) on a link, each with the institution that
    placed it, so the person knows whom to ask to settle or void it."""
    rows = session.execute(
        select(
            Payment.id, Payment.amount_fen, ApiClient.name, Payment.created_at, Payment.expires_at
        )
        .join(ApiClient, ApiClient.id == Payment.client_id)
        .where(Payment.link_id == link_id, _open_hold(now))
        .order_by(Payment.created_at, Payment.id)
    ).all()
    return [LinkHold(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows]
