"""Paying a relative's resident insurance (共济缴费): the use case and the reads
(docs/family.md "Paying a relative's resident insurance").

Every decision is :mod:`qinqing.resident.rules` or a refusal named here; this
module loads the facts, takes the locks, verifies the holder, debits the holder's
personal account and records the contribution, all in the caller's transaction.

Locks, in the global order of docs/ledger.md "Lock order": the request's
``Idempotency-Key`` row (the route), the link ``FOR SHARE`` (an unbind's ``FOR
NO KEY UPDATE`` conflicts with it), the holder's app account (payment-password
verification), the holder's ledger accounts (personal and quotas) ``FOR NO KEY UPDATE`` (two
debits of one account serialize on it, and its overdue holds are released),
then the member's cover-year row (``resident_cover_years``, inserted: a second
holder paying for the same member and year waits on it and is refused), then the
audit head. The member's resident fund account is not locked: the clearing step
credits it in batches.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.audit.service import record
from qinqing.auth.verification import FaceVerification, PaymentPasswordVerification, verify
from qinqing.family.access import load_usable_link, lock_link_shared
from qinqing.family.models import FamilyLink, LinkStatus
from qinqing.kit.clock import china_date
from qinqing.kit.db import new_id
from qinqing.kit.errors import DomainError, not_found
from qinqing.ledger.accounts import post_transfer, resident_fund_code, system_account
from qinqing.ledger.models import AccountKind
from qinqing.notify.service import tell_both
from qinqing.payments.rules import payer_refusal
from qinqing.persons.models import Person, Scheme
from qinqing.persons.service import id_number_of
from qinqing.quota.service import lock_payer
from qinqing.resident import rules
from qinqing.resident.models import ResidentContribution, ResidentCoverYear
from qinqing.runtime import Runtime

AnyVerification = PaymentPasswordVerification | FaceVerification
TRANSFER_KIND = "resident"
PAID_HOLDER = "resident.paid"  # notice to the holder
PAID_MEMBER = "resident.paid_for_you"  # notice to the member
COLLECTOR_SCOPE = "contributions"


def _refuse(refusal: rules.Refusal) -> DomainError:
    return DomainError(refusal.code, refusal.status, **refusal.params)


def paid_cover(session: Session, member_id: uuid.UUID, year: int) -> ResidentCoverYear | None:
    return session.execute(
        select(ResidentCoverYear).where(
            ResidentCoverYear.member_id == member_id, ResidentCoverYear.year == year
        )
    ).scalar_one_or_none()


def _claim_cover_year(session: Session, row: dict[str, Any]) -> bool:
    """Insert the member's cover-year row; False when it exists (or a concurrent
    transaction inserted it and committed: ON CONFLICT waits for it)."""
    if session.get_bind().dialect.name == "postgresql":
        stmt: Any = pg_insert(ResidentCoverYear)
    else:
        stmt = sqlite_insert(ResidentCoverYear)
    got = session.execute(
        stmt.values(**row).on_conflict_do_nothing().returning(ResidentCoverYear.member_id)
    ).scalar_one_or_none()
    return got is not None


def quote(rt: Runtime, member: Person, year: int, today: date) -> rules.Terms | rules.Refusal:
    """The terms for the member's cover year today, by the member's region policy."""
    return rules.terms(rt.policies.policy(member.region_code).resident, year, today)


def pay(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str | uuid.UUID,
    year: int,
    verification: AnyVerification | None,
) -> ResidentContribution:
    """The holder pays the member's 居民医保 contribution for cover year ``year``.

    Refusals, in this order: 404 NOT_FOUND (no such link for the caller, or one
    still pending); 403 RESIDENT_HOLDER_ONLY; 409 NO_MUTUAL_AID_LINK (not an active
    mutual-aid link), HOLDER_NOT_EMPLOYEE, PAYER_NOT_ACTIVE, MEMBER_NOT_RESIDENT;
    422 RESIDENT_YEAR_INVALID, 409 ENROLLMENT_NOT_OPEN, ENROLLMENT_CLOSED;
    409 RESIDENT_ALREADY_PAID; the verification codes (a wrong payment password
    is counted and committed); 409 INSUFFICIENT_BALANCE (QUOTA_INSUFFICIENT on a
    cross-region link, which pays only from its quota).
    """
    now = rt.clock.now()
    link = load_usable_link(session, rt, principal, link_id)
    if principal.kind != "person" or link.holder_id != principal.person_id:
        raise DomainError("RESIDENT_HOLDER_ONLY", 403)
    link = lock_link_shared(session, link)
    if link.status != LinkStatus.active.value or not link.mutual_aid:
        raise DomainError("NO_MUTUAL_AID_LINK", 409)
    holder = session.get(Person, link.holder_id)
    member = session.get(Person, link.member_id)
    assert holder is not None and member is not None
    if payer := payer_refusal(holder.scheme, holder.status):
        raise DomainError(payer, 409)
    if member.scheme != Scheme.resident.value:
        raise DomainError("MEMBER_NOT_RESIDENT", 409)
    found = quote(rt, member, year, china_date(now))
    if isinstance(found, rules.Refusal):
        raise _refuse(found)
    if paid_cover(session, member.id, year) is not None:
        raise DomainError("RESIDENT_ALREADY_PAID", 409, year=year)
    verify(session, rt, holder.id, verification, now=now)

    # A cross-region link pays only from its 共济额度, never from the personal account.
    personal, quota = lock_payer(session, link, now)
    account = quota if link.via_quota else personal
    short = "QUOTA_INSUFFICIENT" if link.via_quota else "INSUFFICIENT_BALANCE"
    if account is None or account.balance_fen - account.held_fen < found.amount_fen:
        raise DomainError(short, 409)
    contribution_id = new_id()
    claimed = _claim_cover_year(
        session,
        {
            "member_id": member.id,
            "year": year,
            "holder_id": holder.id,
            "contribution_id": contribution_id,
            "created_at": now,
        },
    )
    if not claimed:
        raise DomainError("RESIDENT_ALREADY_PAID", 409, year=year)
    fund = system_account(
        session,
        code=resident_fund_code(member.region_code),
        kind=AccountKind.resident_fund,
        region_code=member.region_code,
        now=now,
    )
    transfer_id = post_transfer(
        session,
        person_id=holder.id,
        debit_id=account.id,
        credit_id=fund,
        amount_fen=found.amount_fen,
        kind=TRANSFER_KIND,
        at=now,
    )
    account.balance_fen -= found.amount_fen
    method = verification.method if verification is not None else "none"
    session.execute(
        insert(ResidentContribution).values(
            holder_id=holder.id,
            id=contribution_id,
            link_id=link.id,
            member_id=member.id,
            region_code=member.region_code,
            year=year,
            amount_fen=found.amount_fen,
            cover_starts_on=found.cover_starts_on,
            late=found.late,
            transfer_id=transfer_id,
            verification_method=method,
            channel=principal.channel,
            created_at=now,
            cleared_at=None,
        )
    )
    payload = {
        "contribution_id": str(contribution_id),
        "link_id": str(link.id),
        "year": year,
        "amount_fen": found.amount_fen,
        "cover_starts_on": found.cover_starts_on.isoformat(),
    }
    tell_both(
        session,
        holder_id=holder.id,
        member_id=member.id,
        kinds=(PAID_HOLDER, PAID_MEMBER),
        at=now,
        payload=payload,
    )
    record(
        session,
        actor=principal.actor,
        action="resident.paid",
        subject_kind="family_link",
        subject_id=link.id,
        at=now,
        details={
            "contribution_id": str(contribution_id),
            "year": year,
            "amount_fen": found.amount_fen,
            "late": found.late,
            "region_code": member.region_code,
            "verification_method": method,
        },
    )
    session.flush()
    got = session.execute(
        select(ResidentContribution).where(
            ResidentContribution.holder_id == holder.id, ResidentContribution.id == contribution_id
        )
    ).scalar_one()
    return got


# --- reads ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """What the holder is shown before paying (the web page): the terms or why not."""

    year: int
    terms: rules.Terms | None
    refusal: rules.Refusal | None
    window: rules.Window
    paid: ResidentContribution | None


def offers(session: Session, rt: Runtime, link: FamilyLink, now: datetime) -> list[Offer]:
    """The payable cover years of a link's member (this year and the next), each with
    its terms or refusal and what was already paid for it."""
    member = session.get(Person, link.member_id)
    assert member is not None
    today = china_date(now)
    policy = rt.policies.policy(member.region_code).resident
    out: list[Offer] = []
    for year in rules.payable_years(today):
        found = rules.terms(policy, year, today)
        paid = session.execute(
            select(ResidentContribution).where(
                ResidentContribution.holder_id == link.holder_id,
                ResidentContribution.link_id == link.id,
                ResidentContribution.year == year,
            )
        ).scalar_one_or_none()
        other = paid_cover(session, member.id, year) if paid is None else None
        refusal = found if isinstance(found, rules.Refusal) else None
        if other is not None and refusal is None:
            refusal = rules.Refusal("RESIDENT_ALREADY_PAID", 409, {"year": year})
        out.append(
            Offer(
                year=year,
                terms=found if isinstance(found, rules.Terms) else None,
                refusal=refusal,
                window=rules.window_for(policy, year),
                paid=paid,
            )
        )
    return out


def paid_for(session: Session, member_id: uuid.UUID, limit: int = 20) -> list[ResidentContribution]:
    """The contributions paid for a member (newest cover year first), for the member's
    statement: read through the cover-year look-up, then on each holder's shard."""
    keys = session.execute(
        select(ResidentCoverYear.holder_id, ResidentCoverYear.contribution_id)
        .where(ResidentCoverYear.member_id == member_id)
        .order_by(ResidentCoverYear.year.desc())
        .limit(limit)
    ).all()
    out: list[ResidentContribution] = []
    for holder_id, cid in keys:
        row = session.execute(
            select(ResidentContribution).where(
                ResidentContribution.holder_id == holder_id, ResidentContribution.id == cid
            )
        ).scalar_one_or_none()
        if row is not None:
            out.append(row)
    return out


@dataclass(frozen=True, slots=True)
class CollectorItem:
    contribution: ResidentContribution
    member_name: str
    member_id_number: str


def collector_list(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    year: int,
    page: int,
    page_size: int,
) -> tuple[list[CollectorItem], int]:
    """What was paid in the collector's region for cover year ``year`` (oldest first),
    with the members' full ID numbers (the collector remits by them). The read is
    audited (``resident.listed``: the page and how many numbers were shown)."""
    if principal.kind != "client" or COLLECTOR_SCOPE not in principal.scopes:
        raise DomainError("INSUFFICIENT_SCOPE", 403, scope=COLLECTOR_SCOPE)
    if principal.role != "collector" or principal.region_code is None:
        raise DomainError("FORBIDDEN", 403)
    region = principal.region_code
    where = (ResidentContribution.region_code == region, ResidentContribution.year == year)
    total = int(
        session.execute(
            select(func.count()).select_from(ResidentContribution).where(*where)
        ).scalar_one()
    )
    rows = list(
        session.execute(
            select(ResidentContribution)
            .where(*where)
            .order_by(ResidentContribution.created_at, ResidentContribution.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).scalars()
    )
    members = (
        {
            p.id: p
            for p in session.execute(
                select(Person).where(Person.id.in_(sorted({r.member_id for r in rows}, key=str)))
            ).scalars()
        }
        if rows
        else {}
    )
    items = [
        CollectorItem(
            r,
            members[r.member_id].name,
            id_number_of(rt.vault, members[r.member_id]),
        )
        for r in rows
        if r.member_id in members
    ]
    record(
        session,
        actor=principal.actor,
        action="resident.listed",
        subject_kind="region",
        subject_id=region,
        at=rt.clock.now(),
        details={"year": year, "page": page, "id_numbers_shown": len(items)},
    )
    return items, total


def get_for(session: Session, principal: Principal, contribution_id: str) -> ResidentContribution:
    """One contribution for a party: the holder who paid it or the member it is for;
    for anyone else (or an id that is no uuid) the 404 an unknown id gets."""
    try:
        cid = uuid.UUID(contribution_id)
    except ValueError:
        raise not_found("resident_contribution") from None
    me = principal.person_id
    if principal.kind != "person" or me is None:
        raise not_found("resident_contribution")
    holder_id = me
    as_member = session.execute(
        select(ResidentCoverYear.holder_id).where(
            ResidentCoverYear.member_id == me, ResidentCoverYear.contribution_id == cid
        )
    ).scalar_one_or_none()
    if as_member is not None:
        holder_id = as_member
    found = session.execute(
        select(ResidentContribution).where(
            ResidentContribution.holder_id == holder_id, ResidentContribution.id == cid
        )
    ).scalar_one_or_none()
    if found is None or me not in (found.holder_id, found.member_id):
        raise not_found("resident_contribution")
    return found
