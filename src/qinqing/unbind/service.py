"""Unbinding (解除绑定): the check and the submission (docs/guide.md §3); the review
of a request that waits for it is ``unbind.review``.

Every decision comes from :func:`qinqing.unbind.rules.blockers`; this module
only loads the facts, locks the rows that decide, verifies the person, writes
the change, audits it and notifies both parties, all in the caller's
transaction (services flush, the unit of work commits).

Lock order, the same everywhere so two transactions cannot deadlock: the link
(``FOR NO KEY UPDATE``), then the initiator's person row, then their app
account (payment-password verification), then the audit head.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.access.roles import is_bank_client, require_staff
from qinqing.audit.service import record
from qinqing.auth import documents as id_documents
from qinqing.auth.verification import (
    FaceVerification,
    PaymentPasswordVerification,
    face_provider,
    payment_password_locked,
    verify,
)
from qinqing.family.access import load_link, role_in
from qinqing.family.models import FamilyLink, LinkStatus
from qinqing.family.service import end_link
from qinqing.identity import ric
from qinqing.kit import metrics
from qinqing.kit.errors import DomainError, forbidden, not_found
from qinqing.kit.i18n import DEFAULT_LOCALE
from qinqing.payments.service import open_holds_for_link
from qinqing.persons.models import Person
from qinqing.persons.service import find_by_id_number
from qinqing.regions.policy import UnbindReview
from qinqing.runtime import Runtime
from qinqing.unbind import rules
from qinqing.unbind.effects import announce, notify_parties
from qinqing.unbind.models import RequestStatus, UnbindRequest

Party = Literal["holder", "member"]
AnyVerification = PaymentPasswordVerification | FaceVerification
FAMILY_SCOPE = "family"
LINK_SUBJECT = "family_link"


class UnbindRefused(DomainError):
    """409 UNBIND_REFUSED with every blocker; ``commit`` keeps a counted verification failure."""

    def __init__(self, found: Sequence[rules.Blocker], *, commit: bool = False) -> None:
        self.blockers = list(found)
        super().__init__(
            "UNBIND_REFUSED",
            409,
            commit=commit,
            extra={"blockers": rules.render_all(self.blockers, DEFAULT_LOCALE)},
        )

    @property
    def codes(self) -> list[str]:
        return [b.code for b in self.blockers]

    def localized(self, locale: str) -> DomainError:
        """The same refusal with the blockers' messages in ``locale``."""
        return DomainError(
            self.code,
            self.status,
            commit=self.commit,
            extra={"blockers": rules.render_all(self.blockers, locale)},
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    link: FamilyLink
    on_behalf_of: Party | None
    blockers: list[rules.Blocker]
    review_required: bool

    @property
    def eligible(self) -> bool:
        return rules.eligible(self.blockers)


@dataclass(frozen=True, slots=True)
class UnbindOutcome:
    request: UnbindRequest
    link: FamilyLink


# --- facts -------------------------------------------------------------------------------


def open_holds_on(session: Session, link: FamilyLink, now: datetime) -> rules.HoldsSummary:
    """Authorized, not yet settled, voided or expired payments on the link
    (UNSETTLED_PAYMENTS), read from the ledger.

    On submission the caller holds the link ``FOR NO KEY UPDATE``; a payment
    authorization takes the link ``FOR SHARE`` first, so no hold can appear on
    the link between this read and the unbind's commit.
    """
    count, total_fen = open_holds_for_link(session, link, now)
    return rules.HoldsSummary(count=count, total_fen=total_fen)


def link_facts(link: FamilyLink) -> rules.LinkFacts:
    return rules.LinkFacts(
        status=link.status,
        holder_id=link.holder_id,
        member_id=link.member_id,
        activated_at=link.activated_at,
    )


def _initiator_facts(
    session: Session,
    rt: Runtime,
    person: Person | None,
    now: datetime,
) -> rules.InitiatorFacts:
    if person is None:
        return rules.InitiatorFacts(person_id=None, insurance_status="active")
    return rules.InitiatorFacts(
        person_id=person.id,
        insurance_status=person.status,
        payment_password_locked_until=payment_password_locked(session, person.id, now),
        face_available=face_provider(rt) is not None,
    )


def _counter_facts(session: Session, person: Person, now: datetime) -> rules.InitiatorFacts:
    """The party served at the counter: the ID document is the only way to verify
    there, so the check reports VERIFICATION_LOCKED exactly when the counter's
    document verification is locked for them (``qinqing.auth.documents``)."""
    return rules.InitiatorFacts(
        person_id=person.id,
        insurance_status=person.status,
        payment_password_locked_until=id_documents.locked_until(session, person.id, now),
        face_available=False,
        id_document_available=False,
    )


def _lock_person(session: Session, person_id: uuid.UUID) -> Person:
    return session.execute(
        select(Person)
        .where(Person.id == person_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()


def _party_person(session: Session, link: FamilyLink, role: Party) -> Person:
    person = session.get(Person, link.holder_id if role == "holder" else link.member_id)
    assert person is not None
    return person


def _customer(session: Session, rt: Runtime, id_number: str) -> Person | None:
    """A bank's customer by ID number; malformed numbers are 422 (ID_NUMBER_*)."""
    number = ric.parse(id_number, rt.clock.now().date()).number
    return find_by_id_number(session, rt.vault, number)


def _sole_customer_side(
    session: Session, rt: Runtime, principal: Principal, link: FamilyLink, parameter: str
) -> Party:
    """The side of the link that is the bank's customer, for a bank that did not
    name one: the bank reaches the link through exactly that party. When both
    parties bank with it, which one asks is the bank's to say (PARTY_REQUIRED);
    a link with neither is already the unknown link's 404 in ``load_link``."""
    parties: tuple[tuple[Party, uuid.UUID], ...] = (
        ("holder", link.holder_id),
        ("member", link.member_id),
    )
    sides = [side for side, pid in parties if rt.customers(session, principal.bank_code, pid)]
    if not sides:
        raise not_found("link")
    if len(sides) > 1:
        raise DomainError("PARTY_REQUIRED", 422, parameter=parameter)
    return sides[0]


# --- the check ---------------------------------------------------------------------------


def check(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str | uuid.UUID,
    on_behalf_of: Party | None = None,
) -> CheckResult:
    """The read-only unbind check: ``eligible`` and every blocker at once.

    A person checks for themselves (``on_behalf_of`` must be None). A clerk of
    the link's region names the party they serve at the counter, and a bank
    client (scope ``family``) the party that is its customer, in
    ``on_behalf_of``; for a party that is not its customer the bank gets the
    404 an unknown link gets. Nothing is locked or written.
    """
    if principal.kind == "person":
        if on_behalf_of is not None:
            raise DomainError("PARAMETER_NOT_ALLOWED", 422, parameter="on_behalf_of")
    elif principal.kind == "staff":
        require_staff(principal, "clerk")
    elif FAMILY_SCOPE not in principal.scopes:
        raise DomainError("INSUFFICIENT_SCOPE", 403, scope=FAMILY_SCOPE)
    # Before the link is looked up, so the answer is the same for every link id.
    if principal.kind == "staff" and on_behalf_of is None:
        raise DomainError("PARTY_REQUIRED", 422, parameter="on_behalf_of")
    link = load_link(session, rt, principal, link_id)
    if principal.kind == "client" and on_behalf_of is None:
        on_behalf_of = _sole_customer_side(session, rt, principal, link, "customer")
    now = rt.clock.now()
    person: Person | None
    role: Party | None
    if principal.kind == "person":
        assert principal.person_id is not None
        person = session.get(Person, principal.person_id)
        role = role_in(link, principal.person_id)  # type: ignore[assignment]
    else:
        assert on_behalf_of is not None
        role = on_behalf_of
        person = _party_person(session, link, role)
        # A bank checks only for its customer: the other side answers like an unknown id.
        if is_bank_client(principal) and not rt.customers(session, principal.bank_code, person.id):
            raise not_found("link")
    policy = rt.policies.policy(link.region_code)
    facts = (
        _counter_facts(session, person, now)
        if principal.kind == "staff" and person is not None
        else _initiator_facts(session, rt, person, now)
    )
    found = rules.blockers(link_facts(link), facts, open_holds_on(session, link, now), policy, now)
    return CheckResult(
        link=link,
        on_behalf_of=role,
        blockers=found,
        review_required=policy.unbind_review is UnbindReview.manual,
    )


# --- the submission ----------------------------------------------------------------------


def unbind(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str | uuid.UUID,
    verification: AnyVerification | None,
    reason: str | None = None,
    *,
    customer_id_number: str | None = None,
) -> UnbindOutcome:
    """Unbind a link for a party (a person for themselves, a bank for its customer).

    The link is row-locked, then the initiator; the blockers are decided by
    the same rules as the check, inside this transaction, with the outcome of
    the initiator's verification (payment password or face). Refused: raises
    :class:`UnbindRefused` (409, every blocker; a counted wrong payment
    password is still committed). Otherwise the link ends at once
    (``completed``) or, where the region's policy says ``unbind_review =
    "manual"``, waits for a reviewer (link ``unbinding``, request
    ``pending_review``).
    """
    if principal.kind == "person":
        if customer_id_number is not None:
            raise DomainError("PARAMETER_NOT_ALLOWED", 422, parameter="customer_id_number")
    elif principal.kind == "client":
        if FAMILY_SCOPE not in principal.scopes:
            raise DomainError("INSUFFICIENT_SCOPE", 403, scope=FAMILY_SCOPE)
    else:
        # Clerks unbind at the counter (with an ID document), not here.
        raise forbidden()

    link = load_link(session, rt, principal, link_id, lock=True)
    person: Person | None
    if principal.kind == "person":
        assert principal.person_id is not None
        person = session.get(Person, principal.person_id)
    elif customer_id_number is None:
        side = _sole_customer_side(session, rt, principal, link, "customer_id_number")
        person = _party_person(session, link, side)
    else:
        person = _customer(session, rt, customer_id_number)
        # A bank acts only for its customer, a party of the link: for anyone else
        # the answer is the one an unknown link id gets.
        if (
            person is None
            or role_in(link, person.id) is None
            or not rt.customers(session, principal.bank_code, person.id)
        ):
            raise not_found("link")
    role: Party | None = role_in(link, person.id) if person else None  # type: ignore[assignment]
    if person is not None and role is None:
        person = None  # not a party: nothing about this person is looked at or shown

    def verify_person() -> None:
        assert person is not None
        verify(session, rt, person.id, verification, now=rt.clock.now())

    return submit(
        session,
        rt,
        principal,
        link,
        person,
        role,
        verify_person=verify_person,
        verification_method=verification.method if verification else "none",
        reason=reason,
    )


def submit(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link: FamilyLink,
    person: Person | None,
    role: Party | None,
    *,
    verify_person: Callable[[], None],
    verification_method: str,
    reason: str | None = None,
    form_number: str | None = None,
    audit_details: Mapping[str, str] | None = None,
) -> UnbindOutcome:
    """Decide and apply one unbind on a link the caller already holds locked.

    The channel-independent core (the app, a bank, the counter): ``person`` is
    the party the unbind is for (None when the caller named no party),
    ``verify_person`` raises the verification DomainErrors of
    :mod:`qinqing.auth.verification` (the counter passes its ID-document check).
    ``audit_details`` are added to the audit entry (the counter's form number
    and document type; never personal data).
    """
    now = rt.clock.now()
    if person is not None:
        person = _lock_person(session, person.id)
    commit = False
    outcome: rules.VerificationOutcome | None = None
    if person is not None and role is not None:
        try:
            verify_person()
            outcome = rules.VERIFIED
        except DomainError as exc:
            if exc.code not in rules.VERIFICATION_CODES:
                raise
            outcome = rules.VerificationOutcome(exc.code, dict(exc.params))
            commit = exc.commit
    policy = rt.policies.policy(link.region_code)
    found = rules.blockers(
        link_facts(link),
        _initiator_facts(session, rt, person, now),
        open_holds_on(session, link, now),
        policy,
        now,
        outcome,
    )
    if found:
        refused = UnbindRefused(found, commit=commit)
        # By the first blocker: the reason an operator wants to see move.
        metrics.unbind(principal.channel, refused.codes[0])
        raise refused
    assert person is not None and role is not None

    review = policy.unbind_review is UnbindReview.manual
    request = UnbindRequest(
        link_id=link.id,
        region_code=link.region_code,
        status=RequestStatus.pending_review if review else RequestStatus.completed,
        on_behalf_of=role,
        holder_id=link.holder_id,
        initiator_person_id=person.id,
        actor_kind=principal.kind,
        actor_id=principal.id,
        channel=principal.channel,
        verification_method=verification_method,
        form_number=form_number,
        reason=reason,
        created_at=now,
        decided_at=None if review else now,
    )
    session.add(request)
    session.flush()
    details = {
        "request_id": str(request.id),
        "on_behalf_of": role,
        "verification_method": verification_method,
        "region_code": link.region_code,
        **(audit_details or {}),
    }
    if review:
        link.status = LinkStatus.unbinding
        link.updated_at = now
        action, kind = "unbind.requested", "unbind.pending_review"
    else:
        end_link(
            link,
            by_kind=principal.kind,
            by_id=principal.id,
            channel=principal.channel,
            reason=reason,
            at=now,
        )
        action, kind = "unbind.completed", "unbind.completed"
    # Before the audit entry: a subscriber may lock the holder's accounts (the
    # unused quota returns), and the audit head is always the last lock.
    announce(session, rt, link, request, now)
    record(
        session,
        actor=principal.actor,
        action=action,
        subject_kind=LINK_SUBJECT,
        subject_id=link.id,
        at=now,
        reason=reason,
        details=details,
    )
    notify_parties(session, link, request, kind, now)
    session.flush()
    channel, decided = principal.channel, str(request.status)
    metrics.on_commit(session, lambda: metrics.unbind(channel, decided))
    return UnbindOutcome(request=request, link=link)
