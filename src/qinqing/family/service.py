"""Family links: bind, consent, decline, list (docs/guide.md §3.2).

Services only flush; the caller's unit of work commits. Locks, always in this
order so that two transactions cannot deadlock: the link row (consent,
decline), then the persons rows of holder and member in ascending id order,
then the member's account row (verification). Holding both persons rows
while counting means two concurrent binds that involve the same person are
serialized, so no limit (members, one spouse/father/mother, one direction)
can be exceeded by a race; the partial unique indexes on ``family_links``
stay as the last line of defence.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth.verification import FaceVerification, PaymentPasswordVerification, verify
from qinqing.family import rules
from qinqing.family.access import links_of, load_link, role_in
from qinqing.family.events import LINK_ACTIVATED, LINK_ENDED, FamilyEvent
from qinqing.family.models import OPEN_STATUSES, FamilyLink, LinkStatus
from qinqing.family.views import pair_key
from qinqing.identity import ric
from qinqing.kit.errors import DomainError, forbidden
from qinqing.notify.service import enqueue
from qinqing.persons.models import Person
from qinqing.persons.service import find_by_id_number
from qinqing.runtime import Runtime

# 我的家庭成员 shows ended links for this long after they ended.
ENDED_VISIBLE_DAYS = 365

SUBJECT = "family_link"


# --- facts -----------------------------------------------------------------------


def _facts(person: Person) -> rules.PartyFacts:
    return rules.PartyFacts(
        id=person.id,
        status=person.status,
        scheme=person.scheme,
        region_code=person.region_code,
        birth_date=person.birth_date,
        sex=person.sex,
    )


def lock_persons(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Person]:
    """Lock the persons rows (FOR NO KEY UPDATE) one by one in ascending id order."""
    out: dict[uuid.UUID, Person] = {}
    for pid in sorted(set(ids), key=str):
        person = session.execute(
            select(Person).where(Person.id == pid).with_for_update(key_share=True)
        ).scalar_one_or_none()
        if person is None:
            raise DomainError("MEMBER_NOT_FOUND", 422)
        out[pid] = person
    return out


def open_links_of(
    session: Session, person_ids: Iterable[uuid.UUID], *, exclude: uuid.UUID | None = None
) -> list[rules.OpenLink]:
    """The open links in which any of the persons is holder or member."""
    where: list[ColumnElement[bool]] = [FamilyLink.status.in_([s.value for s in OPEN_STATUSES])]
    if exclude is not None:
        where.append(FamilyLink.id != exclude)
    return [
        rules.OpenLink(
            holder_id=link.holder_id,
            member_id=link.member_id,
            relation=link.relation,
            mutual_aid=link.mutual_aid,
        )
        for link in links_of(session, person_ids, *where)
    ]


def _refusals(
    session: Session,
    rt: Runtime,
    holder: Person,
    member: Person,
    request: rules.BindRequest,
    now: datetime,
    *,
    exclude: uuid.UUID | None = None,
) -> list[rules.Refusal]:
    return rules.refusals(
        holder=_facts(holder),
        member=_facts(member),
        request=request,
        policy=rt.policies.policy(holder.region_code),
        open_links=open_links_of(session, (holder.id, member.id), exclude=exclude),
        today=rules.today_in_china(now),
    )


def _conflict(exc: IntegrityError) -> DomainError | None:
    """Map a partial-unique-index violation to its refusal code."""
    text = str(exc.orig).lower()
    if "uq_family_links_open_unique_relation" in text or "family_links.relation" in text:
        return rules.as_error([rules.Refusal("RELATION_ALREADY_BOUND")])
    if "uq_family_links_open_pair" in text or "family_links.pair_key" in text:
        return rules.as_error([rules.Refusal("DUPLICATE_LINK")])
    return None


def _payload(link: FamilyLink, role: str) -> dict[str, Any]:
    """Notice payloads: ids and codes only, never personal data."""
    return {
        "link_id": str(link.id),
        "relation": link.relation,
        "mutual_aid": link.mutual_aid,
        "your_role": role,
    }


# --- bind ------------------------------------------------------------------------


def bind(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    member_id_number: str,
    member_name: str,
    relation: str,
    mutual_aid: bool,
    yearly_limit_fen: int | None = None,
) -> FamilyLink:
    """The logged-in person binds a member found by ID number and name."""
    if principal.kind != "person" or principal.person_id is None:
        raise forbidden()
    now = rt.clock.now()
    ident = ric.parse(member_id_number, rules.today_in_china(now))
    member = find_by_id_number(session, rt.vault, ident.number)
    # One answer for "no such person" and "the name does not match".
    if member is None or member.name != member_name.strip():
        raise DomainError("MEMBER_NOT_FOUND", 422)
    return bind_persons(
        session,
        rt,
        actor=principal.actor,
        holder_id=principal.person_id,
        member_id=member.id,
        relation=relation,
        mutual_aid=mutual_aid,
        yearly_limit_fen=yearly_limit_fen,
    )


def bind_persons(
    session: Session,
    rt: Runtime,
    *,
    actor: Actor,
    holder_id: uuid.UUID,
    member_id: uuid.UUID,
    relation: str,
    mutual_aid: bool,
    yearly_limit_fen: int | None = None,
    consent_method: str | None = None,
    audit_details: dict[str, Any] | None = None,
) -> FamilyLink:
    """Lock both persons, decide by ``rules.refusals``, insert, audit and notify.

    The link is ``pending_consent`` when the member is of consent age, else
    ``active`` at once (a parent binding a young child). ``consent_method``
    says the member gave their consent in this same act (at the counter, with
    their ID document): the link is then ``active`` at once and the method is
    recorded. ``audit_details`` are added to the audit entry (no personal data).
    """
    now = rt.clock.now()
    persons = lock_persons(session, (holder_id, member_id))
    holder, member = persons[holder_id], persons[member_id]
    request = rules.BindRequest(relation, mutual_aid, yearly_limit_fen)
    found = _refusals(session, rt, holder, member, request, now)
    if found:
        raise rules.as_error(found)
    policy = rt.policies.policy(holder.region_code)
    consent_required = rules.needs_consent(_facts(member), policy, rules.today_in_china(now))
    pending = consent_required and consent_method is None
    link = FamilyLink(
        holder_id=holder.id,
        member_id=member.id,
        pair_key=pair_key(holder.id, member.id),
        relation=relation,
        mutual_aid=mutual_aid,
        mutual_aid_yearly_limit_fen=yearly_limit_fen,
        status=(LinkStatus.pending_consent if pending else LinkStatus.active).value,
        region_code=holder.region_code,
        created_at=now,
        created_by_kind=actor.kind,
        created_by_id=actor.id,
        created_channel=actor.channel,
        consent_required=consent_required,
        activated_at=None if pending else now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(link)
    except IntegrityError as exc:
        mapped = _conflict(exc)
        if mapped is None:
            raise
        raise mapped from None
    record(
        session,
        actor=actor,
        action="family.bind",
        subject_kind=SUBJECT,
        subject_id=link.id,
        at=now,
        details={
            "holder_id": str(holder.id),
            "member_id": str(member.id),
            "relation": relation,
            "mutual_aid": mutual_aid,
            "yearly_limit_fen": yearly_limit_fen,
            "status": link.status,
            **({"consent_method": consent_method} if consent_required and consent_method else {}),
            **(audit_details or {}),
        },
    )
    if pending:
        enqueue(
            session,
            person_id=member.id,
            kind="link.requested",
            at=now,
            payload=_payload(link, "member"),
        )
    else:
        for pid, role in ((holder.id, "holder"), (member.id, "member")):
            enqueue(session, person_id=pid, kind="link.bound", at=now, payload=_payload(link, role))
        rt.events.publish(session, FamilyEvent(LINK_ACTIVATED, link, now))
    session.flush()
    return link


# --- consent and decline ---------------------------------------------------------


def consent(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str | uuid.UUID,
    verification: PaymentPasswordVerification | FaceVerification | None,
) -> FamilyLink:
    """The member accepts a pending link with their own verification.

    A failed verification is counted and committed (it propagates with
    ``commit=True``). The binding rules are decided again, without this link,
    since the holder's status or the policy may have changed meanwhile.
    """
    now = rt.clock.now()
    link = load_link(session, rt, principal, link_id, lock=True)
    if role_in(link, principal.person_id) != "member":
        raise DomainError("NOT_THE_MEMBER", 403)
    if link.status != LinkStatus.pending_consent:
        raise DomainError("LINK_NOT_PENDING", 409, link_status=link.status)
    assert principal.person_id is not None
    persons = lock_persons(session, (link.holder_id, link.member_id))
    verify(session, rt, principal.person_id, verification, now=now)
    method = verification.method if verification is not None else "none"
    return activate(
        session,
        rt,
        link,
        persons[link.holder_id],
        persons[link.member_id],
        actor=principal.actor,
        verification_method=method,
    )


def activate(
    session: Session,
    rt: Runtime,
    link: FamilyLink,
    holder: Person,
    member: Person,
    *,
    actor: Actor,
    verification_method: str,
) -> FamilyLink:
    """Re-decide the rules and make a pending link active (the caller holds the locks)."""
    now = rt.clock.now()
    request = rules.BindRequest(link.relation, link.mutual_aid, link.mutual_aid_yearly_limit_fen)
    found = _refusals(session, rt, holder, member, request, now, exclude=link.id)
    # Consent itself is what the age rule asks for; it cannot refuse a consent.
    found = [r for r in found if r.code != "MINOR_NEEDS_PARENT"]
    if found:
        raise rules.as_error(found)
    link.status = LinkStatus.active.value
    link.activated_at = now
    link.updated_at = now
    record(
        session,
        actor=actor,
        action="family.consent",
        subject_kind=SUBJECT,
        subject_id=link.id,
        at=now,
        details={"verification_method": verification_method},
    )
    enqueue(
        session,
        person_id=link.holder_id,
        kind="link.consented",
        at=now,
        payload=_payload(link, "holder"),
    )
    rt.events.publish(session, FamilyEvent(LINK_ACTIVATED, link, now))
    session.flush()
    return link


def decline(
    session: Session, rt: Runtime, principal: Principal, link_id: str | uuid.UUID
) -> FamilyLink:
    """Either party ends a link that is still waiting for consent: the member
    declines it, the holder withdraws it. No verification: it only takes access away."""
    now = rt.clock.now()
    link = load_link(session, rt, principal, link_id, lock=True)
    role = role_in(link, principal.person_id)
    if role is None:
        raise forbidden()
    if link.status != LinkStatus.pending_consent:
        raise DomainError("LINK_NOT_PENDING", 409, link_status=link.status)
    reason = "declined by the member" if role == "member" else "withdrawn by the holder"
    link.status = LinkStatus.ended.value
    link.ended_at = now
    link.ended_by_kind = principal.kind
    link.ended_by_id = principal.id
    link.ended_channel = principal.channel
    link.end_reason = reason
    link.updated_at = now
    record(
        session,
        actor=principal.actor,
        action="family.decline",
        subject_kind=SUBJECT,
        subject_id=link.id,
        at=now,
        reason=reason,
        details={"by": role},
    )
    other, other_role = (
        (link.holder_id, "holder") if role == "member" else (link.member_id, "member")
    )
    enqueue(
        session,
        person_id=other,
        kind="link.declined" if role == "member" else "link.withdrawn",
        at=now,
        payload=_payload(link, other_role),
    )
    rt.events.publish(session, FamilyEvent(LINK_ENDED, link, now))
    session.flush()
    return link


# --- reading ---------------------------------------------------------------------


def _listing_order(link: FamilyLink) -> tuple[int, float]:
    if link.status == LinkStatus.ended and link.ended_at is not None:
        return (1, -link.ended_at.timestamp())
    return (0, -link.created_at.timestamp())


def list_family(session: Session, rt: Runtime, principal: Principal) -> dict[str, list[FamilyLink]]:
    """我的家庭成员: the person's open links, then those ended within
    ``ENDED_VISIBLE_DAYS``; open ones newest first, ended ones latest ended first."""
    if principal.person_id is None:
        raise forbidden()
    return family_of(session, rt, principal.person_id)


def family_of(session: Session, rt: Runtime, pid: uuid.UUID) -> dict[str, list[FamilyLink]]:
    """A person's links as holder and as member, as 我的家庭成员 lists them (the
    app and the counter show the same list)."""
    since = rt.clock.now() - timedelta(days=ENDED_VISIBLE_DAYS)
    found = links_of(
        session,
        [pid],
        or_(FamilyLink.status.in_([s.value for s in OPEN_STATUSES]), FamilyLink.ended_at >= since),
    )
    found.sort(key=lambda link: str(link.id))
    found.sort(key=lambda link: link.created_at, reverse=True)
    links = sorted(found, key=_listing_order)
    return {
        "as_holder": [link for link in links if link.holder_id == pid],
        "as_member": [link for link in links if link.member_id == pid],
    }


def get_link(
    session: Session, rt: Runtime, principal: Principal, link_id: str | uuid.UUID
) -> FamilyLink:
    """One link for a party or staff of its region; anything else is NOT_FOUND."""
    return load_link(session, rt, principal, link_id)
