"""Guardianship proof for a minor's binding (docs/guide.md §3.2, ``family.proof_rules``).

A ``pending_proof`` link becomes ``active`` when its guardianship is proven, in
one of two ways, both decided by staff of the **member's** region:

- the holder uploads the document (:func:`upload`), kept only encrypted (vault
  kind ``link_proof``), and a reviewer approves or rejects it (:func:`decide`);
  a rejection ends the link;
- a clerk sees the document at the counter (``counter.service.accept_proof``,
  which calls :func:`seen_at_counter`) and records its type and number
  (encrypted) and the paper form's number.

Approval re-decides the binding rules (``family.service.activate``). The file is
shown only to reviewers and clerks of the member's region (:func:`document`);
it never reaches a log, an audit entry or an error text.

Lock order as everywhere: the link (``FOR NO KEY UPDATE``), then the persons
(``family.service.lock_persons``), then the proof row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.access.roles import require_person, require_reviewer, staff_of_region
from qinqing.audit.service import record
from qinqing.family import proof_rules
from qinqing.family.access import load_link, parse_id, role_in
from qinqing.family.events import LINK_ENDED, FamilyEvent
from qinqing.family.models import FamilyLink, LinkProof, LinkStatus, ProofStatus
from qinqing.family.service import SUBJECT, activate, end_link, lock_persons
from qinqing.kit.errors import DomainError, forbidden, not_found
from qinqing.notify.service import enqueue
from qinqing.persons.service import get_person
from qinqing.runtime import Runtime

PROOF_FILE_KIND = "link_proof"
PROOF_NUMBER_KIND = "proof_document_number"
PROOF_SUBJECT = "link_proof"


@dataclass(frozen=True, slots=True)
class QueueItem:
    proof: LinkProof
    link: FamilyLink


def _member_region(session: Session, link: FamilyLink) -> str:
    member = get_person(session, link.member_id)
    assert member is not None
    return member.region_code


def _pending_proof_of(session: Session, link: FamilyLink) -> LinkProof | None:
    return session.execute(
        select(LinkProof).where(
            LinkProof.holder_id == link.holder_id,
            LinkProof.link_id == link.id,
            LinkProof.status == ProofStatus.pending.value,
        )
    ).scalar_one_or_none()


def latest_proof(session: Session, link: FamilyLink) -> LinkProof | None:
    """The link's newest proof (what the holder's page shows), or None."""
    return session.execute(
        select(LinkProof)
        .where(LinkProof.holder_id == link.holder_id, LinkProof.link_id == link.id)
        .order_by(LinkProof.created_at.desc(), LinkProof.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _notice(session: Session, link: FamilyLink, kind: str, at: datetime, proof: LinkProof) -> None:
    enqueue(
        session,
        person_id=link.holder_id,
        kind=kind,
        at=at,
        payload={
            "link_id": str(link.id),
            "proof_id": str(proof.id),
            "relation": link.relation,
            "your_role": "holder",
            "document_type": proof.document_type,
        },
    )


# --- the holder uploads ---------------------------------------------------------------


def upload(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str | uuid.UUID,
    *,
    document_type: str,
    data: bytes,
) -> LinkProof:
    """The holder of a ``pending_proof`` link uploads the proof for review."""
    require_person(principal)
    if document_type not in proof_rules.DOCUMENT_TYPES:
        raise DomainError("DOCUMENT_TYPE_INVALID", 422)
    content_type = proof_rules.check_file(data)
    now = rt.clock.now()
    link = load_link(session, rt, principal, link_id, lock=True)
    if role_in(link, principal.person_id) != "holder":
        raise DomainError("NOT_THE_HOLDER", 403)
    if link.status != LinkStatus.pending_proof:
        raise DomainError("LINK_NOT_PENDING_PROOF", 409, link_status=link.status)
    if _pending_proof_of(session, link) is not None:
        raise DomainError("PROOF_ALREADY_PENDING", 409)
    proof = LinkProof(
        holder_id=link.holder_id,
        id=uuid.uuid4(),
        link_id=link.id,
        member_id=link.member_id,
        region_code=_member_region(session, link),
        document_type=document_type,
        channel=principal.channel,
        content_type=content_type,
        size_bytes=len(data),
        content_cipher=rt.vault.encrypt_bytes(PROOF_FILE_KIND, data),
        status=ProofStatus.pending.value,
        created_at=now,
        created_by_kind=principal.kind,
        created_by_id=principal.id,
    )
    session.add(proof)
    record(
        session,
        actor=principal.actor,
        action="family.proof.upload",
        subject_kind=SUBJECT,
        subject_id=link.id,
        at=now,
        details={
            "proof_id": str(proof.id),
            "document_type": document_type,
            "content_type": content_type,
            "size_bytes": len(data),
        },
    )
    session.flush()
    return proof


# --- staff of the member's region -----------------------------------------------------


def _load(
    session: Session, proof_id: str | uuid.UUID, *, lock: bool = False
) -> tuple[LinkProof, FamilyLink] | None:
    """A proof and its link, found by the proof's id (staff look-ups are rare: every
    shard is searched for the id), locked in order (link, then proof) when asked."""
    try:
        pid = proof_id if isinstance(proof_id, uuid.UUID) else uuid.UUID(str(proof_id))
    except ValueError:
        return None
    found = session.execute(
        select(LinkProof.holder_id, LinkProof.link_id).where(LinkProof.id == pid)
    ).one_or_none()
    if found is None:
        return None
    holder_id, lid = found
    link_stmt = select(FamilyLink).where(FamilyLink.holder_id == holder_id, FamilyLink.id == lid)
    proof_stmt = select(LinkProof).where(LinkProof.holder_id == holder_id, LinkProof.id == pid)
    if lock:
        link_stmt = link_stmt.with_for_update(key_share=True)
        proof_stmt = proof_stmt.with_for_update(key_share=True)
    link = session.execute(link_stmt.execution_options(populate_existing=True)).scalar_one()
    proof = session.execute(proof_stmt.execution_options(populate_existing=True)).scalar_one()
    return proof, link


def review_queue(
    session: Session,
    principal: Principal,
    *,
    status: str = ProofStatus.pending.value,
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[QueueItem], int]:
    """Uploaded proofs of the reviewer's region (the member's), oldest first."""
    region = require_reviewer(principal)
    where = [
        LinkProof.region_code == region,
        LinkProof.status == status,
        LinkProof.content_cipher.is_not(None),
    ]
    total = session.execute(select(func.count()).select_from(LinkProof).where(*where)).scalar_one()
    rows = session.execute(
        select(LinkProof, FamilyLink)
        .join(
            FamilyLink,
            (FamilyLink.holder_id == LinkProof.holder_id) & (FamilyLink.id == LinkProof.link_id),
        )
        .where(*where)
        .order_by(LinkProof.created_at, LinkProof.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [QueueItem(proof, link) for proof, link in rows], int(total)


def get_for_staff(session: Session, principal: Principal, proof_id: str) -> QueueItem:
    """One proof for a reviewer or clerk of the member's region; else the 404 an unknown
    id gets (whether or not it exists)."""
    if principal.kind != "staff" or principal.role not in ("reviewer", "clerk"):
        raise forbidden()
    found = _load(session, proof_id)
    if found is None or not staff_of_region(principal, found[0].region_code):
        raise not_found("link_proof")
    return QueueItem(*found)


def document(
    session: Session, rt: Runtime, principal: Principal, proof_id: str
) -> tuple[str, bytes]:
    """The uploaded file (content type, bytes) for a reviewer or clerk of the member's
    region. Reading writes nothing (a page's GET must have no side effect); the
    decision that follows is audited with the proof's id."""
    item = get_for_staff(session, principal, proof_id)
    proof = item.proof
    if proof.content_cipher is None or proof.content_type is None:
        raise not_found("link_proof")
    return proof.content_type, rt.vault.decrypt_bytes(PROOF_FILE_KIND, proof.content_cipher)


def decide(
    session: Session,
    rt: Runtime,
    principal: Principal,
    proof_id: str,
    decision: str,
    comment: str | None = None,
) -> QueueItem:
    """A reviewer of the member's region approves (the link becomes active, the rules
    decided again) or rejects (the link ends) an uploaded proof. The holder is told."""
    region = require_reviewer(principal)
    if decision not in ("approve", "reject"):
        raise DomainError("VALIDATION_ERROR", 422)
    found = _load(session, proof_id, lock=True)
    if found is None or found[0].region_code != region:
        raise not_found("link_proof")
    proof, link = found
    if decision == "reject" and not (comment and comment.strip()):
        raise DomainError("COMMENT_REQUIRED", 422)
    if proof.status != ProofStatus.pending or link.status != LinkStatus.pending_proof:
        raise DomainError("PROOF_NOT_PENDING", 409, proof_status=proof.status)
    now = rt.clock.now()
    proof.decided_at, proof.decided_by, proof.decision_comment = now, principal.id, comment
    if decision == "approve":
        persons = lock_persons(session, (link.holder_id, link.member_id))
        activate(
            session,
            rt,
            link,
            persons[link.holder_id],
            persons[link.member_id],
            actor=principal.actor,
            verification_method="guardianship_proof",
            action="family.proof.approved",
            notice="link.proof_approved",
            details={"proof_id": str(proof.id), "document_type": proof.document_type},
        )
        proof.status = ProofStatus.approved.value
    else:
        proof.status = ProofStatus.rejected.value
        end_link(
            link,
            by_kind=principal.kind,
            by_id=principal.id,
            channel=principal.channel,
            reason="guardianship proof rejected",
            at=now,
        )
        record(
            session,
            actor=principal.actor,
            action="family.proof.rejected",
            subject_kind=SUBJECT,
            subject_id=link.id,
            at=now,
            reason=comment,
            details={"proof_id": str(proof.id), "document_type": proof.document_type},
        )
        _notice(session, link, "link.proof_rejected", now, proof)
        rt.events.publish(session, FamilyEvent(LINK_ENDED, link, now))
    session.flush()
    return QueueItem(proof, link)


def find_for_member_region(session: Session, link_id: str, region: str) -> FamilyLink:
    """A link found by id for staff of its **member's** region (the link's own region is
    the holder's), locked; else the 404 an unknown id gets."""
    lid = parse_id(link_id)
    holder_id = session.execute(
        select(FamilyLink.holder_id).where(FamilyLink.id == lid)
    ).scalar_one_or_none()
    link = None
    if holder_id is not None:
        link = session.execute(
            select(FamilyLink)
            .where(FamilyLink.holder_id == holder_id, FamilyLink.id == lid)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).scalar_one()
    if link is None or _member_region(session, link) != region:
        raise not_found("link")
    return link


def seen_at_counter(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link: FamilyLink,
    *,
    document_type: str,
    document_number: str,
    form_number: str,
) -> LinkProof:
    """A clerk of the member's region saw the proof (the counter checked the form
    number and the document's): the link becomes active (the rules decided again);
    the document's number is kept encrypted. The caller holds the link's lock."""
    if link.status != LinkStatus.pending_proof:
        raise DomainError("LINK_NOT_PENDING_PROOF", 409, link_status=link.status)
    if document_type not in proof_rules.DOCUMENT_TYPES:
        raise DomainError("DOCUMENT_TYPE_INVALID", 422)
    number = proof_rules.check_document_number(document_number)
    now = rt.clock.now()
    proof = LinkProof(
        holder_id=link.holder_id,
        id=uuid.uuid4(),
        link_id=link.id,
        member_id=link.member_id,
        region_code=_member_region(session, link),
        document_type=document_type,
        channel=principal.channel,
        document_number_cipher=rt.vault.encrypt(PROOF_NUMBER_KIND, number),
        form_number=form_number,
        status=ProofStatus.approved.value,
        created_at=now,
        created_by_kind=principal.kind,
        created_by_id=principal.id,
        decided_at=now,
        decided_by=principal.id,
    )
    # An upload still waiting is settled by the counter's decision too.
    pending = _pending_proof_of(session, link)
    if pending is not None:
        pending.status = ProofStatus.approved.value
        pending.decided_at, pending.decided_by = now, principal.id
    session.add(proof)
    persons = lock_persons(session, (link.holder_id, link.member_id))
    activate(
        session,
        rt,
        link,
        persons[link.holder_id],
        persons[link.member_id],
        actor=principal.actor,
        verification_method="guardianship_proof",
        action="family.proof.counter",
        notice="link.proof_approved",
        details={
            "proof_id": str(proof.id),
            "document_type": document_type,
            "form_number": form_number,
        },
    )
    session.flush()
    return proof


def document_number_of(rt: Runtime, proof: LinkProof) -> str | None:
    """The number a clerk recorded (for staff of the region and the receipt)."""
    if proof.document_number_cipher is None:
        return None
    return rt.vault.decrypt(PROOF_NUMBER_KIND, proof.document_number_cipher)
