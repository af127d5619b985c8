"""What a person sees of their personal account: the statement (``GET
/me/account/entries``) and the balance on ``GET /me``. A link's payments are
:mod:`qinqing.payments.statements`.

Reads never write: a hold past its expiry is simply not counted (it is
released for good the next time the account is locked, or by
``qinqing payments expire``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from qinqing.contributions.models import Contribution
from qinqing.family.models import FamilyLink
from qinqing.kit.errors import DomainError
from qinqing.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransfer
from qinqing.payments.formulas import held_at, open_hold
from qinqing.payments.models import Payment
from qinqing.persons.models import Person
from qinqing.resident.models import ResidentContribution
from qinqing.resident.service import paid_for

PERSONAL = AccountKind.personal.value


@dataclass(frozen=True, slots=True)
class Balance:
    has_personal_account: bool
    balance_fen: int
    held_fen: int

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.held_fen


def balance_of(session: Session, person: Person, now: datetime) -> Balance:
    account = session.execute(
        select(LedgerAccount.id, LedgerAccount.balance_fen).where(
            LedgerAccount.person_id == person.id, LedgerAccount.kind == PERSONAL
        )
    ).one_or_none()
    if account is None:
        return Balance(person.scheme == "employee", 0, 0)
    return Balance(True, int(account.balance_fen), held_at(session, person.id, account.id, now))


def names_of(session: Session, person_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of persons who may live on other shards (one read, no join)."""
    if not person_ids:
        return {}
    return {
        r.id: r.name
        for r in session.execute(
            select(Person.id, Person.name).where(Person.id.in_(sorted(person_ids, key=str)))
        )
    }


@dataclass(frozen=True, slots=True)
class StatementLine:
    id: uuid.UUID
    at: datetime
    amount_fen: int
    kind: str  # contribution | payment | resident | quota | quota_refund
    period: str | None
    payment_id: uuid.UUID | None
    member_id: uuid.UUID | None
    member_name: str | None
    # A resident contribution (共济缴费) paid for the member: which, for which cover
    # year, and from when it covers.
    resident_contribution_id: uuid.UUID | None = None
    cover_year: int | None = None
    cover_starts_on: date | None = None
    # Money moved into a relative's 共济额度 or back: that quota's link.
    link_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    payment_id: uuid.UUID
    amount_fen: int
    member_id: uuid.UUID
    member_name: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PaidForMe:
    """A resident contribution a holder paid for this person (the member's side)."""

    id: uuid.UUID
    year: int
    amount_fen: int
    holder_id: uuid.UUID
    holder_name: str
    paid_at: datetime
    cover_starts_on: date


@dataclass(frozen=True, slots=True)
class QuotaLine:
    """A 共济额度 the person set aside for a relative in another region."""

    link_id: uuid.UUID
    member_id: uuid.UUID
    member_name: str
    balance_fen: int
    held_fen: int


@dataclass(frozen=True, slots=True)
class Statement:
    balance: Balance
    holds: list[Hold]
    lines: list[StatementLine]
    next_before: str | None
    resident_paid_for_me: list[PaidForMe]
    quotas: list[QuotaLine]


def quotas_of(session: Session, person: Person, now: datetime) -> list[QuotaLine]:
    """The quotas of the person's cross-region links that still hold money, or whose
    link is in force (the money is no longer in the balance, but still the holder's)."""
    rows = session.execute(
        select(
            LedgerAccount.id,
            LedgerAccount.link_id,
            LedgerAccount.balance_fen,
            FamilyLink.member_id,
        )
        .join(
            FamilyLink,
            and_(
                FamilyLink.holder_id == LedgerAccount.person_id,
                FamilyLink.id == LedgerAccount.link_id,
            ),
        )
        .where(
            LedgerAccount.person_id == person.id,
            LedgerAccount.kind == AccountKind.quota.value,
            or_(LedgerAccount.balance_fen > 0, FamilyLink.status != "ended"),
        )
        .order_by(LedgerAccount.created_at)
    ).all()
    names = names_of(session, {r.member_id for r in rows})
    return [
        QuotaLine(
            r.link_id,
            r.member_id,
            names.get(r.member_id, ""),
            r.balance_fen,
            held_at(session, person.id, r.id, now),
        )
        for r in rows
    ]


def resident_paid_for_me(session: Session, person: Person) -> list[PaidForMe]:
    """The resident contributions family members paid for this person, newest cover
    year first (a member of the resident scheme has no personal account: this is
    their side of the payment)."""
    rows = paid_for(session, person.id)
    names = names_of(session, {r.holder_id for r in rows})
    return [
        PaidForMe(
            r.id,
            r.year,
            r.amount_fen,
            r.holder_id,
            names.get(r.holder_id, ""),
            r.created_at,
            r.cover_starts_on,
        )
        for r in rows
    ]


def statement(
    session: Session, person: Person, now: datetime, *, limit: int, before: str | None
) -> Statement:
    """Newest first, ``limit`` lines a page; ``before`` is the id of the last line seen."""
    bal = balance_of(session, person, now)
    me = person.id
    account_id = session.execute(
        select(LedgerAccount.id).where(
            LedgerAccount.person_id == me, LedgerAccount.kind == PERSONAL
        )
    ).scalar_one_or_none()
    for_me = resident_paid_for_me(session, person)
    if account_id is None:
        return Statement(bal, [], [], None, for_me, [])
    hold_rows = session.execute(
        select(
            Payment.id,
            Payment.amount_fen,
            Payment.member_id,
            Payment.created_at,
            Payment.expires_at,
        )
        .where(Payment.holder_id == me, Payment.account_id == account_id, open_hold(now))
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    ).all()
    # Everything here is on the holder's shard; the members' names are read apart.
    quota = aliased(LedgerAccount)
    stmt = (
        select(
            LedgerEntry.id,
            LedgerEntry.created_at,
            LedgerEntry.amount_fen,
            LedgerTransfer.kind,
            Contribution.period,
            Payment.id.label("payment_id"),
            func.coalesce(
                Payment.member_id, ResidentContribution.member_id, FamilyLink.member_id
            ).label("member_id"),
            ResidentContribution.id.label("resident_id"),
            ResidentContribution.year.label("cover_year"),
            ResidentContribution.cover_starts_on,
            quota.link_id.label("quota_link_id"),
        )
        .join(
            LedgerTransfer,
            and_(
                LedgerTransfer.person_id == LedgerEntry.person_id,
                LedgerTransfer.id == LedgerEntry.transfer_id,
            ),
        )
        .outerjoin(
            Contribution,
            and_(
                Contribution.person_id == LedgerTransfer.person_id,
                Contribution.id == LedgerTransfer.contribution_id,
            ),
        )
        .outerjoin(
            Payment,
            and_(
                Payment.holder_id == LedgerTransfer.person_id,
                Payment.id == LedgerTransfer.payment_id,
            ),
        )
        .outerjoin(
            ResidentContribution,
            and_(
                ResidentContribution.holder_id == LedgerTransfer.person_id,
                ResidentContribution.transfer_id == LedgerTransfer.id,
            ),
        )
        # Money moved into a quota or back: the other side is the quota, which names
        # its link (and so the member).
        .outerjoin(
            quota,
            and_(
                quota.person_id == LedgerTransfer.person_id,
                quota.kind == AccountKind.quota.value,
                or_(
                    quota.id == LedgerTransfer.debit_account_id,
                    quota.id == LedgerTransfer.credit_account_id,
                ),
            ),
        )
        .outerjoin(
            FamilyLink,
            and_(FamilyLink.holder_id == quota.person_id, FamilyLink.id == quota.link_id),
        )
        .where(LedgerEntry.person_id == me, LedgerEntry.account_id == account_id)
    )
    if before:
        try:
            cursor_id = uuid.UUID(before)
        except ValueError:
            raise DomainError("CURSOR_INVALID", 422) from None
        cursor = session.execute(
            select(LedgerEntry.created_at).where(
                LedgerEntry.person_id == me,
                LedgerEntry.id == cursor_id,
                LedgerEntry.account_id == account_id,
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
    names = names_of(session, {r.member_id for r in [*hold_rows, *rows[:limit]] if r.member_id})
    holds = [
        Hold(
            r.id, r.amount_fen, r.member_id, names.get(r.member_id, ""), r.created_at, r.expires_at
        )
        for r in hold_rows
    ]
    lines = [
        StatementLine(
            r.id,
            r.created_at,
            r.amount_fen,
            r.kind,
            r.period,
            r.payment_id,
            r.member_id,
            names.get(r.member_id) if r.member_id else None,
            r.resident_id,
            r.cover_year,
            r.cover_starts_on,
            r.quota_link_id,
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return Statement(
        bal,
        holds,
        lines,
        str(lines[-1].id) if more and lines else None,
        for_me,
        quotas_of(session, person, now),
    )
