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

import hmac
import unicodedata
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.access.roles import require_person
from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth.verification import FaceVerification, PaymentPasswordVerification, verify
from qinqing.family import lookups, rules
from qinqing.family.access import links_of, load_link, role_in
from qinqing.family.events import LINK_ACTIVATED, LINK_ENDED, FamilyEvent
from qinqing.family.models import (
    OPEN_STATUSES,
    PENDING_STATUSES,
    FamilyLink,
    FamilyLinkMember,
    LinkStatus,
)
from qinqing.family.views import pair_key
from qinqing.identity import ric
from qinqing.identity.masking import mask_name
from qinqing.kit import metrics
from qinqing.kit.clock import china_month_start
from qinqing.kit.errors import DomainError, forbidden
from qinqing.notify.service import enqueue
from qinqing.persons.models import Person
from qinqing.persons.service import (
    ID_KIND,
    find_in_constant_work,
    get_person,
    guardians_of,
    persons_by_index,
)
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


def member_binds_this_month(
    session: Session, member_id: uuid.UUID, now: datetime, *, exclude: uuid.UUID | None = None
) -> int:
    """Links to the member requested this calendar month (Beijing), on the member's shard."""
    where: list[ColumnElement[bool]] = [
        FamilyLinkMember.member_id == member_id,
        FamilyLinkMember.created_at >= china_month_start(now),
    ]
    if exclude is not None:
        where.append(FamilyLinkMember.link_id != exclude)
    return int(
        session.execute(
            select(func.count()).select_from(FamilyLinkMember).where(*where)
        ).scalar_one()
    )


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
        member_binds_this_month=member_binds_this_month(session, member.id, now, exclude=exclude),
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
    """Notice payloads: ids and codes only (a guardian's notice adds a masked name)."""
    return {
        "link_id": str(link.id),
        "relation": link.relation,
        "mutual_aid": link.mutual_aid,
        "your_role": role,
    }


# --- bind ------------------------------------------------------------------------


def _name_matches(registered: str | None, typed: str) -> bool:
    """The typed name is the registered one (NFC, trimmed), compared in constant time;
    an unknown person is compared against a stand-in so both misses cost the same."""
    a = unicodedata.normalize("NFC", (registered or "\x00").strip()).encode()
    b = unicodedata.normalize("NFC", typed.strip()).encode()
    return hmac.compare_digest(a, b) and registered is not None


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
    """The logged-in person binds a member found by ID number and name.

    Nothing about the registry is revealed before it must be: the request is
    decided first (``rules.request_refusals``: the relation, the limits, the
    amounts, the holder's own state — and what the ID number itself says);
    an unknown ID number and a name that does not match then answer the same
    ``MEMBER_NOT_FOUND``, and count against the holder's daily allowance of
    failed look-ups (``family.lookups``; past it, 429 until the next day).
    """
    holder_id = require_person(principal)
    with metrics.refusals(metrics.binding):
        member = _member_to_bind(
            session,
            rt,
            holder_id,
            member_id_number,
            member_name,
            relation,
            mutual_aid,
            yearly_limit_fen,
        )
    return bind_persons(
        session,
        rt,
        actor=principal.actor,
        holder_id=holder_id,
        member_id=member.id,
        relation=relation,
        mutual_aid=mutual_aid,
        yearly_limit_fen=yearly_limit_fen,
    )


def _member_to_bind(
    session: Session,
    rt: Runtime,
    holder_id: uuid.UUID,
    member_id_number: str,
    member_name: str,
    relation: str,
    mutual_aid: bool,
    yearly_limit_fen: int | None,
) -> Person:
    """The member a holder's bind names, once the request and the holder pass; the
    refusals of :func:`bind` before the pair is locked."""
    now = rt.clock.now()
    today = rules.today_in_china(now)
    ident = ric.parse(member_id_number, today)
    holder = get_person(session, holder_id)
    if holder is None:
        raise forbidden()
    policy = rt.policies.policy(holder.region_code)
    wait = lookups.wait_seconds(session, holder.id, policy.bind_lookups_per_day, now)
    if wait:
        raise DomainError("BIND_LOOKUPS_EXHAUSTED", 429, retry_after=wait)
    request = rules.BindRequest(relation, mutual_aid, yearly_limit_fen)
    typed = rules.Typed(
        ident.birth_date,
        ident.sex,
        hmac.compare_digest(rt.vault.index(ID_KIND, ident.number), holder.id_number_index),
    )
    rules.check(
        rules.request_refusals(
            holder=_facts(holder),
            typed=typed,
            request=request,
            policy=policy,
            open_links=open_links_of(session, [holder.id]),
            today=today,
        )
    )
    member = find_in_constant_work(session, rt.vault, ident.number)
    if not _name_matches(member.name if member else None, member_name) or member is None:
        lookups.count_failure(session, holder.id, now)
        raise DomainError("MEMBER_NOT_FOUND", 422, commit=True)
    return member


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

    The link starts as ``rules.initial_status`` says: ``pending_consent`` for a
    member of consent age (or ``active`` when ``consent_method`` says they
    consented in this same act, at the counter with their ID document);
    for a younger member ``active`` only when the holder is one of their
    registered guardians, else ``pending_proof``. The member's registered
    guardians are told of every binding of their child by someone else.
    ``audit_details`` are added to the audit entry (no personal data).
    """
    now = rt.clock.now()
    today = rules.today_in_china(now)
    persons = lock_persons(session, (holder_id, member_id))
    holder, member = persons[holder_id], persons[member_id]
    request = rules.BindRequest(relation, mutual_aid, yearly_limit_fen)
    found = _refusals(session, rt, holder, member, request, now)
    if found:
        refused = rules.as_error(found)
        metrics.binding(refused.code)
        raise refused
    policy = rt.policies.policy(holder.region_code)
    guardians = guardians_of(session, member.id)
    status = rules.initial_status(
        member.birth_date,
        policy,
        today,
        holder_is_guardian=holder.id_number_index in guardians,
        consent_given=consent_method is not None,
    )
    consent_required = rules.needs_consent(_facts(member), policy, today)
    active = status == LinkStatus.active
    link = FamilyLink(
        holder_id=holder.id,
        member_id=member.id,
        pair_key=pair_key(holder.id, member.id),
        relation=relation,
        mutual_aid=mutual_aid,
        mutual_aid_yearly_limit_fen=yearly_limit_fen,
        via_quota=mutual_aid and rules.via_quota(holder.region_code, member.region_code, policy),
        status=status,
        region_code=holder.region_code,
        created_at=now,
        created_by_kind=actor.kind,
        created_by_id=actor.id,
        created_channel=actor.channel,
        consent_required=consent_required,
        activated_at=now if active else None,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(link)
    except IntegrityError as exc:
        mapped = _conflict(exc)
        if mapped is None:
            raise
        metrics.binding(mapped.code)
        raise mapped from None
    outcome = str(status)
    metrics.on_commit(session, lambda: metrics.binding(outcome))
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
    if status == LinkStatus.pending_consent:
        enqueue(
            session,
            person_id=member.id,
            kind="link.requested",
            at=now,
            payload=_payload(link, "member"),
        )
    elif status == LinkStatus.pending_proof:
        enqueue(
            session,
            person_id=holder.id,
            kind="link.proof_required",
            at=now,
            payload=_payload(link, "holder"),
        )
    else:
        for pid, role in ((holder.id, "holder"), (member.id, "member")):
            enqueue(session, person_id=pid, kind="link.bound", at=now, payload=_payload(link, role))
        rt.events.publish(session, FamilyEvent(LINK_ACTIVATED, link, now))
    _tell_guardians(session, link, holder, member, guardians, now)
    session.flush()
    return link


def _tell_guardians(
    session: Session,
    link: FamilyLink,
    holder: Person,
    member: Person,
    guardians: set[str],
    at: datetime,
) -> None:
    """Each registered guardian of the member who is insured here, but not the holder,
    hears of the binding: who (the holder's masked name), which child (masked), and
    how to object (the notice's text: unbind at the counter of the member's region,
    or call 12333)."""
    for index, person_id in sorted(persons_by_index(session, guardians).items()):
        if index == holder.id_number_index or person_id == holder.id:
            continue
        enqueue(
            session,
            person_id=person_id,
            kind="link.guardian_notice",
            at=at,
            payload={
                "link_id": str(link.id),
                "relation": link.relation,
                "link_status": link.status,
                "your_role": "guardian",
                "holder_name_masked": mask_name(holder.name),
                "member_name_masked": mask_name(member.name),
            },
        )


def end_link(
    link: FamilyLink, *, by_kind: str, by_id: str, channel: str, reason: str | None, at: datetime
) -> None:
    """A link ends, kept with who, when, why and through which channel."""
    link.status = LinkStatus.ended
    link.ended_at = at
    link.ended_by_kind = by_kind
    link.ended_by_id = by_id
    link.ended_channel = channel
    link.end_reason = reason
    link.updated_at = at


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
    action: str = "family.consent",
    notice: str = "link.consented",
    details: dict[str, Any] | None = None,
) -> FamilyLink:
    """Re-decide the rules and make a pending link active (the caller holds the locks):
    the member consented (``family.consent``) or the guardianship was proven
    (``family.proof.approved``, ``family.proof.counter``)."""
    now = rt.clock.now()
    request = rules.BindRequest(link.relation, link.mutual_aid, link.mutual_aid_yearly_limit_fen)
    found = _refusals(session, rt, holder, member, request, now, exclude=link.id)
    if found:
        raise rules.as_error(found)
    link.status = LinkStatus.active.value
    link.activated_at = now
    link.updated_at = now
    record(
        session,
        actor=actor,
        action=action,
        subject_kind=SUBJECT,
        subject_id=link.id,
        at=now,
        details={"verification_method": verification_method, **(details or {})},
    )
    enqueue(
        session,
        person_id=link.holder_id,
        kind=notice,
        at=now,
        payload=_payload(link, "holder"),
    )
    rt.events.publish(session, FamilyEvent(LINK_ACTIVATED, link, now))
    session.flush()
    return link


def decline(
    session: Session, rt: Runtime, principal: Principal, link_id: str | uuid.UUID
) -> FamilyLink:
    """Either party ends a link that is still waiting (for consent or for proof): the
    member declines it, the holder withdraws it. No verification: it only takes
    access away."""
    now = rt.clock.now()
    link = load_link(session, rt, principal, link_id, lock=True)
    role = role_in(link, principal.person_id)
    if role is None:
        raise forbidden()
    if link.status not in PENDING_STATUSES:
        raise DomainError("LINK_NOT_PENDING", 409, link_status=link.status)
    reason = "declined by the member" if role == "member" else "withdrawn by the holder"
    end_link(
        link,
        by_kind=principal.kind,
        by_id=principal.id,
        channel=principal.channel,
        reason=reason,
        at=now,
    )
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


def audit_full_read(session: Session, rt: Runtime, principal: Principal, link: FamilyLink) -> None:
    """A clerk read a link with both parties' ID numbers in full (an API read with a
    bearer token, which no cross-site link can make a browser send)."""
    record(
        session,
        actor=principal.actor,
        action="family.link_read_full",
        subject_kind="family_link",
        subject_id=link.id,
        at=rt.clock.now(),
        details={"holder_id": str(link.holder_id), "member_id": str(link.member_id)},
    )


def get_link(
    session: Session, rt: Runtime, principal: Principal, link_id: str | uuid.UUID
) -> FamilyLink:
    """One link for a party or staff of its region; anything else is NOT_FOUND."""
    return load_link(session, rt, principal, link_id)
