"""The agency counter (经办机构窗口): what a clerk does for a person who came in.

A clerk (staff role ``clerk``) serves their own region only. Nothing here
decides a rule of its own: the unbind goes through ``unbind.service.submit``
(``unbind.rules.blockers`` decides, the region's review applies), the binding
through ``family.service.bind_persons`` (``family.rules.refusals`` decides).
What the counter adds is the ID document in place of the person's own
verification, the paper form's number, and the audit of every look-up.

Services only flush; the request's unit of work commits. Lock order as on the
app path: the link, then the person's row, then the person's counter-document
row (``counter.documents``), then the audit head.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.access.roles import require_clerk
from qinqing.audit.service import record
from qinqing.auth import documents
from qinqing.auth import rules as id_rules
from qinqing.auth.models import StaffUser
from qinqing.counter import rules
from qinqing.family import proofs
from qinqing.family import service as family_service
from qinqing.family.access import links_of, load_link
from qinqing.family.models import FamilyLink, LinkProof
from qinqing.family.proof_rules import DOCUMENT_NAMES
from qinqing.family.rules import today_in_china
from qinqing.identity import ric
from qinqing.identity.masking import mask_document_number, mask_id_number, mask_name
from qinqing.kit.errors import DomainError, not_found
from qinqing.persons.models import Person
from qinqing.persons.service import ID_KIND, find_by_id_number, id_number_of
from qinqing.runtime import Runtime
from qinqing.unbind import review as unbind_review
from qinqing.unbind import service as unbind_service

PERSON_SUBJECT = "person"


@dataclass(frozen=True, slots=True)
class Document:
    """An ID document as the clerk attests it: its type and the number read from it."""

    type: id_rules.DocumentType
    number: str
    name: str | None = None


# --- look-up -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LookupResult:
    person: Person
    reveal: bool  # full ID number and phone: the person is of the clerk's region
    as_holder: list[FamilyLink]
    as_member: list[FamilyLink]
    id_document_locked_until: datetime | None


def _party_of_region_link(session: Session, person_id: uuid.UUID, region: str) -> bool:
    return bool(links_of(session, [person_id], FamilyLink.region_code == region))


def lookup(
    session: Session, rt: Runtime, principal: Principal, id_number: str, reason: str | None
) -> LookupResult:
    """Find the person by ID number, with their links, and audit the look-up.

    A clerk finds the insured persons of their region, and anyone who is a
    party to a link of their region (the link's staff see it already). For
    anybody else the answer is the 404 an unknown number gets, and that
    look-up is audited too (committed although the request fails).
    """
    region = require_clerk(principal)
    now = rt.clock.now()
    number = ric.parse(id_number, today_in_china(now)).number
    person = find_by_id_number(session, rt.vault, number)
    visible = person is not None and (
        person.region_code == region or _party_of_region_link(session, person.id, region)
    )
    if person is None or not visible:
        record(
            session,
            actor=principal.actor,
            action="counter.lookup",
            subject_kind=PERSON_SUBJECT,
            subject_id="-",
            at=now,
            reason=reason,
            # The keyed blind index, never the number: an auditor with the key can
            # tell which number was asked for; a database dump alone cannot.
            details={"found": False, "id_number_index": rt.vault.index(ID_KIND, number)},
        )
        raise DomainError("NOT_FOUND", 404, commit=True, kind=PERSON_SUBJECT)
    reveal = person.region_code == region
    links = family_service.family_of(session, rt, person.id)
    if not reveal:
        # Someone from another region: only the links this counter is in charge of.
        links = {
            side: [x for x in found if x.region_code == region] for side, found in links.items()
        }
    record(
        session,
        actor=principal.actor,
        action="counter.lookup",
        subject_kind=PERSON_SUBJECT,
        subject_id=person.id,
        at=now,
        reason=reason,
        details={
            "found": True,
            "revealed": reveal,
            "links": len(links["as_holder"]) + len(links["as_member"]),
        },
    )
    return LookupResult(
        person=person,
        reveal=reveal,
        as_holder=links["as_holder"],
        as_member=links["as_member"],
        id_document_locked_until=documents.locked_until(session, person.id, now),
    )


def view(session: Session, rt: Runtime, principal: Principal, person_id: uuid.UUID) -> LookupResult:
    """The person's page again (after an unbind, from a link's page), shown by a GET:
    the same visibility as a look-up, numbers masked, and nothing written — a GET a
    cross-site link can make a clerk's browser send must not write the audit log.
    Seeing the full numbers again is a new look-up (a POST, audited)."""
    region = require_clerk(principal)
    person = session.get(Person, person_id)
    if person is None or not (
        person.region_code == region or _party_of_region_link(session, person.id, region)
    ):
        raise DomainError("NOT_FOUND", 404, kind=PERSON_SUBJECT)
    links = family_service.family_of(session, rt, person.id)
    if person.region_code != region:
        links = {
            side: [x for x in found if x.region_code == region] for side, found in links.items()
        }
    return LookupResult(
        person=person,
        reveal=False,
        as_holder=links["as_holder"],
        as_member=links["as_member"],
        id_document_locked_until=documents.locked_until(session, person.id, rt.clock.now()),
    )


# --- unbind on behalf of a party ---------------------------------------------


def unbind(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    link_id: str | uuid.UUID,
    on_behalf_of: unbind_service.Party,
    document: Document,
    form_number: str,
    reason: str | None = None,
) -> unbind_service.UnbindOutcome:
    """Unbind a link of the clerk's region for the party who came to the counter.

    The document must be that party's (``counter.documents``: a mismatch is a
    ``VERIFICATION_FAILED`` blocker and counts towards the lockout). Every
    other condition, and the region's review, is ``unbind.service.submit``'s.
    """
    require_clerk(principal)
    form = rules.check_form_number(form_number)
    now = rt.clock.now()
    number = id_rules.document_number(document.type, document.number, today_in_china(now))
    link = load_link(session, rt, principal, link_id, lock=True)
    person = session.get(Person, link.holder_id if on_behalf_of == "holder" else link.member_id)
    assert person is not None

    def verify_person() -> None:
        assert person is not None
        documents.verify_document(
            session,
            rt,
            person,
            document.type,
            number,
            actor=principal.actor,
            link_id=link.id,
            now=now,
        )

    return unbind_service.submit(
        session,
        rt,
        principal,
        link,
        person,
        on_behalf_of,
        verify_person=verify_person,
        verification_method=id_rules.ID_DOCUMENT_METHOD,
        reason=reason,
        form_number=form,
        audit_details={"form_number": form, "id_document_type": document.type},
    )


# --- bind on behalf of a holder ----------------------------------------------


def bind(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    holder: Document,
    member: Document,
    relation: str,
    mutual_aid: bool,
    yearly_limit_fen: int | None,
    form_number: str,
    reason: str | None = None,
) -> FamilyLink:
    """Bind for a holder of the clerk's region who came with the member.

    Both documents are attested by the clerk, and each must name a registered
    person with that name. The holder must be of the clerk's region (else the
    404 of the look-up); an unknown member is 422 ``MEMBER_NOT_FOUND`` as in
    the app. The member's consent is given at the counter, so the link is
    active at once when ``family.rules.refusals`` allows the binding at all.
    """
    region = require_clerk(principal)
    form = rules.check_form_number(form_number)
    today = today_in_china(rt.clock.now())
    holder_number = id_rules.document_number(holder.type, holder.number, today)
    member_number = id_rules.document_number(member.type, member.number, today)
    holder_person = find_by_id_number(session, rt.vault, holder_number)
    if (
        holder_person is None
        or holder_person.region_code != region
        or holder_person.name != (holder.name or "").strip()
    ):
        raise not_found(PERSON_SUBJECT)
    member_person = find_by_id_number(session, rt.vault, member_number)
    if member_person is None or member_person.name != (member.name or "").strip():
        raise DomainError("MEMBER_NOT_FOUND", 422)
    link = family_service.bind_persons(
        session,
        rt,
        actor=principal.actor,
        holder_id=holder_person.id,
        member_id=member_person.id,
        relation=relation,
        mutual_aid=mutual_aid,
        yearly_limit_fen=yearly_limit_fen,
        consent_method=id_rules.ID_DOCUMENT_METHOD,
        audit_details={
            "form_number": form,
            "holder_id_document_type": holder.type,
            "member_id_document_type": member.type,
            **({"reason": reason} if reason else {}),
        },
    )
    return link


# --- guardianship proof seen at the counter ------------------------------------------


def accept_proof(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str,
    *,
    document_type: str,
    document_number: str,
    form_number: str,
) -> tuple[LinkProof, FamilyLink]:
    """A clerk of the member's region saw the guardianship proof of a ``pending_proof``
    link (出生医学证明, 户口本 or a court's guardianship document): the link becomes
    active. The document's number is kept encrypted; the form number is checked like
    every form number here."""
    region = require_clerk(principal)
    form = rules.check_form_number(form_number)
    link = proofs.find_for_member_region(session, link_id, region)
    proof = proofs.seen_at_counter(
        session,
        rt,
        principal,
        link,
        document_type=document_type,
        document_number=document_number,
        form_number=form,
    )
    return proof, link


# --- the receipt -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptData:
    """Everything the printed receipt shows, personal data already masked."""

    request_id: str
    status: str
    region_code: str
    region_name: str
    clerk_username: str
    form_number: str
    on_behalf_of: str
    relation: str
    mutual_aid: bool
    holder_name: str
    holder_id_number: str
    member_name: str
    member_id_number: str
    created_at: datetime
    decided_at: datetime | None
    decision_comment: str | None
    # What the receipt is for: an unbind (the default) or a guardianship proof seen.
    business: str = "unbind"
    proof_document: str | None = None


def _request_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise not_found("unbind_request") from None


def proof_receipt(
    session: Session, rt: Runtime, principal: Principal, proof_id: str
) -> ReceiptData:
    """The receipt of a guardianship proof seen at a counter of the clerk's region (the
    member's); other proofs: 404."""
    region = require_clerk(principal)
    item = proofs.get_for_staff(session, principal, proof_id)
    proof, link = item.proof, item.link
    if proof.channel != "counter" or proof.region_code != region:
        raise not_found("link_proof")
    holder = session.get(Person, link.holder_id)
    member = session.get(Person, link.member_id)
    assert holder is not None and member is not None
    try:
        clerk = session.get(StaffUser, uuid.UUID(proof.created_by_id))
    except ValueError:
        clerk = None
    number = proofs.document_number_of(rt, proof) or ""
    shown = mask_document_number(number)
    return ReceiptData(
        request_id=str(proof.id),
        status="proof_accepted",
        region_code=proof.region_code,
        region_name=rt.policies.region(proof.region_code).name,
        clerk_username=clerk.username if clerk else proof.created_by_id,
        form_number=proof.form_number or "",
        on_behalf_of="holder",
        relation=link.relation,
        mutual_aid=link.mutual_aid,
        holder_name=mask_name(holder.name),
        holder_id_number=mask_id_number(id_number_of(rt.vault, holder)),
        member_name=mask_name(member.name),
        member_id_number=mask_id_number(id_number_of(rt.vault, member)),
        created_at=proof.created_at,
        decided_at=None,
        decision_comment=None,
        business="proof",
        proof_document=f"{DOCUMENT_NAMES.get(proof.document_type, proof.document_type)}  {shown}",
    )


def receipt(session: Session, rt: Runtime, principal: Principal, request_id: str) -> ReceiptData:
    """The receipt of a counter unbind of the clerk's region (any clerk there may
    reprint it; it names the clerk who handled it). Other requests: 404."""
    region = require_clerk(principal)
    request = unbind_review.peek_request(session, _request_id(request_id))
    if request is None or request.region_code != region or request.channel != "counter":
        raise not_found("unbind_request")
    link = session.get(FamilyLink, (request.holder_id, request.link_id))
    holder = session.get(Person, link.holder_id) if link else None
    member = session.get(Person, link.member_id) if link else None
    assert link is not None and holder is not None and member is not None
    clerk = None
    if request.actor_kind == "staff":
        try:
            clerk = session.get(StaffUser, uuid.UUID(request.actor_id))
        except ValueError:
            clerk = None
    return ReceiptData(
        request_id=str(request.id),
        status=request.status,
        region_code=request.region_code,
        region_name=rt.policies.region(request.region_code).name,
        clerk_username=clerk.username if clerk else request.actor_id,
        form_number=request.form_number or "",
        on_behalf_of=request.on_behalf_of,
        relation=link.relation,
        mutual_aid=link.mutual_aid,
        holder_name=mask_name(holder.name),
        holder_id_number=mask_id_number(id_number_of(rt.vault, holder)),
        member_name=mask_name(member.name),
        member_id_number=mask_id_number(id_number_of(rt.vault, member)),
        created_at=request.created_at,
        decided_at=request.decided_at if request.status in ("approved", "rejected") else None,
        decision_comment=request.decision_comment,
    )
