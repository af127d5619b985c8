"""Contributions (docs/guide.md §3.4): the public quote, a collector's monthly
post, and closing a month.

What is credited: the contribution is computed by :func:`rules.quote` on the
base clamped to the region's floor and ceiling; an ``employee`` person
(the only scheme with a personal account, 个人账户) has the quote's
``personal_account_fen`` (the policy's ``personal_account_share`` of the
personal amounts) moved from the region's funding account to their personal
account. Other schemes are recorded with ``credited_fen = 0`` and no ledger
movement.

The arrears rule: a *missing month* of a person is a closed month
(``MonthClosing``) of their region, not before the month the person was
created, for which they have no contribution. Closing a month marks ``active``
persons of the monthly schemes without a contribution for it as ``arrears``;
a post that leaves an ``arrears`` person of a monthly scheme without any missing
month restores ``active``. Residents (``resident``, 居民医保) pay yearly, so month
closing neither marks nor restores them.

Locks, in the global order of ``docs/ledger.md`` "Lock order": a post holds
its region's row ``FOR SHARE``, then the person ``FOR NO KEY UPDATE``, then the
funding and personal accounts (ascending id), then the audit head; closing a
month holds the region rows ``FOR NO KEY UPDATE`` (in code order), then the
persons it marks (ascending id), then the audit head. So a closing waits for
the posts in flight in its region and then sees them (READ COMMITTED takes a
fresh snapshot per statement), and a post never misses a closing committed
meanwhile. On SQLite, ``BEGIN IMMEDIATE`` serializes the two.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.contributions import rules
from qinqing.contributions.models import Contribution, MonthClosing
from qinqing.contributions.rules import current_period, period_end, previous_period
from qinqing.identity import ric
from qinqing.kit.clock import china_date
from qinqing.kit.errors import DomainError, forbidden
from qinqing.kit.locking import one_lock_per_row
from qinqing.ledger.accounts import (
    ensure_personal,
    funding_code,
    lock_personal,
    post_transfer,
    system_account,
)
from qinqing.ledger.models import AccountKind
from qinqing.notify.service import enqueue
from qinqing.persons.models import Person, PersonStatus, Scheme
from qinqing.persons.service import find_by_id_number
from qinqing.regions.models import Region
from qinqing.regions.policy import RegionInfo
from qinqing.runtime import Runtime

# Schemes that contribute every month and so can fall into arrears at a month's
# closing. Residents (居民医保) pay once a year, in the collection period.
MONTHLY_SCHEMES: tuple[str, ...] = (Scheme.employee.value, Scheme.flexible.value)
# The only scheme with a personal account (个人账户).
ACCOUNT_SCHEME = Scheme.employee.value
# Employee basic medical insurance began with 国发〔1998〕44号; nothing earlier exists.
EARLIEST_PERIOD = "1999-01"
ARREARS_CLEARED = "contribution.arrears_cleared"


# --- periods ---------------------------------------------------------------------


def created_period(person: Person) -> str:
    """The month (China time) in which the person was registered here."""
    return current_period(person.created_at)


def check_period(text: str, now: datetime) -> str:
    """A period a contribution may be posted for: ``YYYY-MM``, not after this month."""
    latest = current_period(now)
    period = text.strip()
    if rules.parse_period(period) is None or not EARLIEST_PERIOD <= period <= latest:
        raise DomainError("PERIOD_INVALID", 422, earliest=EARLIEST_PERIOD, latest=latest)
    return period


# --- the quote -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegionQuote:
    region: RegionInfo
    quote: rules.Quote
    rounding: str


def region_quote(rt: Runtime, region_code: str, base_fen: int) -> RegionQuote:
    """The contribution calculator for one region (404 REGION_NOT_FOUND when unknown)."""
    info = rt.policies.region(region_code)
    policy = rt.policies.policy(region_code).contribution
    return RegionQuote(info, rules.quote(policy, base_fen), policy.rounding.value)


# --- posting ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostedContribution:
    contribution: Contribution
    person_status: str  # the person's status after the post


def missing_months(session: Session, person: Person) -> int:
    """Closed months of the person's region, from their creation month on, without
    a contribution of theirs."""
    paid = exists().where(
        Contribution.person_id == person.id, Contribution.period == MonthClosing.period
    )
    count = session.execute(
        select(func.count())
        .select_from(MonthClosing)
        .where(
            MonthClosing.region_code == person.region_code,
            MonthClosing.period >= created_period(person),
            ~paid,
        )
    ).scalar_one()
    return int(count)


def _lock_region(session: Session, region_code: str, *, share: bool) -> None:
    if one_lock_per_row(session):
        # A region row is in a reference table, copied to every node: on Citus its
        # row locks are taken on every copy and concurrent posts deadlock there. A
        # transaction-scoped advisory lock on the coordinator keeps the same order
        # (posts share it, closing a month takes it alone).
        _region_advisory_lock(session, region_code, share=share)
        return
    session.execute(
        select(Region.code).where(Region.code == region_code).with_for_update(read=share)
    ).all()


def _region_advisory_lock(session: Session, region_code: str, *, share: bool) -> None:
    fn = "pg_advisory_xact_lock_shared" if share else "pg_advisory_xact_lock"
    session.execute(
        text(f"SELECT {fn}(hashtextextended(:key, 0))"),
        {"key": f"qinqing.region:{region_code}"},
    )


def _credit(
    session: Session, person: Person, contribution: Contribution, amount_fen: int, now: datetime
) -> None:
    """Funding account of the region → the person's personal account. Only the
    person's account is locked and changed here; the funding side is settled by the
    clearing step (``ledger.clearing``)."""
    source = system_account(
        session,
        code=funding_code(person.region_code),
        kind=AccountKind.funding,
        region_code=person.region_code,
        now=now,
    )
    ensure_personal(session, person_id=person.id, region_code=person.region_code, now=now)
    target = lock_personal(session, [person.id])[person.id]
    post_transfer(
        session,
        person_id=person.id,
        debit_id=source,
        credit_id=target.id,
        amount_fen=amount_fen,
        kind="contribution",
        at=now,
        contribution_id=contribution.id,
    )
    target.balance_fen += amount_fen


def _restore_if_paid_up(
    session: Session, person: Person, contribution: Contribution, actor: Actor, now: datetime
) -> None:
    if person.status != PersonStatus.arrears.value or person.scheme not in MONTHLY_SCHEMES:
        return
    if missing_months(session, person):
        return
    person.status, person.updated_at = PersonStatus.active.value, now
    record(
        session,
        actor=actor,
        action="person.status",
        subject_kind="person",
        subject_id=person.id,
        at=now,
        reason="missing contributions paid",
        details={
            "from": PersonStatus.arrears.value,
            "to": PersonStatus.active.value,
            "contribution_id": str(contribution.id),
        },
    )
    enqueue(
        session,
        person_id=person.id,
        kind=ARREARS_CLEARED,
        at=now,
        payload={"contribution_id": str(contribution.id), "period": contribution.period},
    )


def post_contribution(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    id_number: str,
    period: str,
    base_fen: int,
) -> PostedContribution:
    """A collector posts one person's contribution for one month (docs/guide.md §5.1 POST /contributions).

    Refusals: 422 ``ID_NUMBER_*`` and ``PERIOD_INVALID``; 404 ``PERSON_NOT_FOUND``
    (no such person insured in the collector's region: unknown and insured
    elsewhere are one answer); 409 ``CONTRIBUTION_EXISTS`` (that month is
    already posted).
    """
    region_code = principal.region_code
    if principal.kind != "client" or region_code is None:
        raise forbidden()
    now = rt.clock.now()
    ident = ric.parse(id_number, china_date(now))
    period = check_period(period, now)

    # Region (shared) before person: the order closing a month takes too.
    _lock_region(session, region_code, share=True)
    person = find_by_id_number(session, rt.vault, ident.number, lock=True)
    # A person insured in another region is answered exactly like an unknown ID
    # number: a collector must not learn who is insured elsewhere.
    if person is None or person.region_code != region_code:
        raise DomainError("PERSON_NOT_FOUND", 404)
    existing = session.execute(
        select(Contribution.id).where(
            Contribution.person_id == person.id, Contribution.period == period
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise DomainError("CONTRIBUTION_EXISTS", 409, period=period, contribution_id=str(existing))

    policy = rt.policies.policy(person.region_code).contribution
    q = rules.quote(policy, base_fen)
    credited = q.personal_account_fen if person.scheme == ACCOUNT_SCHEME else 0
    contribution = Contribution(
        id=uuid.uuid4(),
        person_id=person.id,
        region_code=person.region_code,
        period=period,
        base_fen=base_fen,
        clamped_base_fen=q.clamped_base_fen,
        personal_total_fen=q.personal_total_fen,
        employer_total_fen=q.employer_total_fen,
        credited_fen=credited,
        details={
            "rounding": policy.rounding.value,
            "scheme": person.scheme,
            "insurances": [
                {
                    "insurance": line.insurance,
                    "personal_fen": line.personal_fen,
                    "employer_fen": line.employer_fen,
                }
                for line in q.lines
            ],
            "personal_account_fen": q.personal_account_fen,
        },
        client_id=principal.id,
        created_at=now,
    )
    session.add(contribution)
    session.flush()
    if credited > 0:
        _credit(session, person, contribution, credited, now)

    record(
        session,
        actor=principal.actor,
        action="contribution.posted",
        subject_kind="contribution",
        subject_id=contribution.id,
        at=now,
        details={
            "person_id": str(person.id),
            "region_code": person.region_code,
            "period": period,
            "clamped_base_fen": q.clamped_base_fen,
            "credited_fen": credited,
        },
    )
    _restore_if_paid_up(session, person, contribution, principal.actor, now)
    session.flush()
    return PostedContribution(contribution, person.status)


# --- closing a month -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegionClosing:
    region_code: str
    region_name: str
    marked_arrears: int


def close_month(session: Session, rt: Runtime, period: str, actor: Actor) -> list[RegionClosing]:
    """Close ``period`` in every region not yet closed for it (docs/guide.md §5.2
    ``contributions close-month``).

    In each region, one set-based UPDATE marks as ``arrears`` the ``active``
    persons of the monthly schemes created before the month ended who have no
    contribution for it; a ``MonthClosing`` row and one audit entry record the
    count. Refusals: 422 ``PERIOD_INVALID`` (malformed) and ``PERIOD_NOT_ENDED``;
    409 ``PERIOD_ALREADY_CLOSED`` when every region is closed for it already.
    """
    now = rt.clock.now()
    period = period.strip()
    if rules.parse_period(period) is None or period < EARLIEST_PERIOD:
        latest = previous_period(current_period(now))
        raise DomainError("PERIOD_INVALID", 422, earliest=EARLIEST_PERIOD, latest=latest)
    ends = period_end(period)
    if ends > now:
        raise DomainError("PERIOD_NOT_ENDED", 422, period=period)

    regions = {info.code: info for info in rt.policies.regions()}
    # The region rows, in code order (the first locks of the global order): posts
    # in flight finish first, and a concurrent closing of the same month waits
    # and then finds it closed. NO KEY UPDATE, so foreign-key checks on regions
    # (every new link, person, account or request) do not wait for a closing.
    if one_lock_per_row(session):
        for code in sorted(regions):
            _region_advisory_lock(session, code, share=False)
    else:
        session.execute(
            select(Region.code)
            .where(Region.code.in_(sorted(regions)))
            .order_by(Region.code)
            .with_for_update(key_share=True)
        ).all()
    closed = set(
        session.execute(select(MonthClosing.region_code).where(MonthClosing.period == period))
        .scalars()
        .all()
    )
    todo = [code for code in sorted(regions) if code not in closed]
    if not todo:
        raise DomainError("PERIOD_ALREADY_CLOSED", 409, period=period)

    # Every region's persons first, each set locked in ascending id order (the
    # order a binding locks two persons in); the audit head only after all of
    # them, as every other writer takes it last.
    marked: dict[str, int] = {}
    for code in todo:
        paid = exists().where(Contribution.person_id == Person.id, Contribution.period == period)
        due = (
            Person.region_code == code,
            Person.status == PersonStatus.active.value,
            Person.scheme.in_(MONTHLY_SCHEMES),
            Person.created_at < ends,
            ~paid,
        )
        if one_lock_per_row(session):
            # On Citus: one statement per shard, each locking its own rows; a
            # binding that holds two persons meanwhile is a deadlock Citus breaks,
            # and the command is run again (Database.run).
            marking = update(Person).where(*due)
        else:
            locked_first = select(Person.id).where(*due).order_by(Person.id)
            marking = update(Person).where(
                Person.id.in_(locked_first.with_for_update(key_share=True))
            )
        result = session.execute(
            marking.values(status=PersonStatus.arrears.value, updated_at=now).execution_options(
                synchronize_session=False
            )
        )
        marked[code] = int(getattr(result, "rowcount", 0) or 0)

    out: list[RegionClosing] = []
    for code in todo:
        session.add(
            MonthClosing(
                region_code=code, period=period, closed_at=now, marked_arrears=marked[code]
            )
        )
        record(
            session,
            actor=actor,
            action="contributions.close_month",
            subject_kind="region",
            subject_id=code,
            at=now,
            details={"period": period, "marked_arrears": marked[code]},
        )
        out.append(RegionClosing(code, regions[code].name, marked[code]))
    session.flush()
    return out
