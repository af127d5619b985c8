"""Family routes: bind, consent, decline, 我的家庭成员, one link (docs/guide.md §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth.deps import PersonDep, PrincipalDep, staff_dep
from qinqing.family import proof_rules, proofs, service
from qinqing.family.models import ProofStatus
from qinqing.family.schemas import (
    BindIn,
    ConsentIn,
    DocumentTypeName,
    FamilyOut,
    ProofDecisionIn,
    ProofOut,
    ProofPage,
    ProofReviewOut,
)
from qinqing.family.views import LinkOut, link_out, may_reveal
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.http.idempotency import IdempotencyKeyDep, run_for_request
from qinqing.kit.errors import forbidden
from qinqing.runtime import Runtime

router = APIRouter(tags=["family"])
ReviewerDep = Annotated[Principal, staff_dep("reviewer")]
StaffDep = Annotated[Principal, staff_dep("reviewer", "clerk")]


@router.get("/me/family", response_model=FamilyOut, summary="我的家庭成员")
def my_family(principal: PersonDep, session: SessionDep, rt: RuntimeDep) -> FamilyOut:
    """Your links as holder and as member: open ones, then those ended in the last year."""
    found = service.list_family(session, rt, principal)
    return FamilyOut(
        as_holder=[link_out(session, rt, link, principal) for link in found["as_holder"]],
        as_member=[link_out(session, rt, link, principal) for link in found["as_member"]],
    )


@router.post(
    "/me/family",
    status_code=201,
    response_model=LinkOut,
    summary="Bind a family member (绑定家庭成员)",
)
def bind(
    body: BindIn,
    request: Request,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Start a binding as the holder. A member of the region's consent age or older
    must accept it (`pending_consent`); a younger member is bound at once (`active`)
    only by a registered guardian, anyone else must prove guardianship
    (`pending_proof`: upload the proof, or show it at the counter of the member's
    region).

    The request is decided before anyone is looked up: 422 `SELF_LINK`,
    `RELATION_NOT_ADMITTED`, `MUTUAL_AID_RELATION_NOT_ADMITTED`, `YEARLY_LIMIT_INVALID`,
    `ID_NUMBER_*`; 409 `HOLDER_NOT_ACTIVE`, `RELATION_IMPLAUSIBLE`, `MINOR_NEEDS_PARENT`,
    `RELATION_ALREADY_BOUND`, `MEMBER_LIMIT_REACHED`, `MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER`.
    Then 422 `MEMBER_NOT_FOUND` (an unknown ID number or a name that does not match:
    one answer; each counts against your daily look-ups, past them 429
    `BIND_LOOKUPS_EXHAUSTED` with `Retry-After` until the next day); then 409
    `DUPLICATE_LINK`, `MEMBER_BIND_LIMIT_REACHED`, `MEMBER_NOT_INSURED`,
    `MUTUAL_AID_OUT_OF_SCOPE`, `ONE_DIRECTION`. The problem document lists every
    refusal found in `refusals`. Send an `Idempotency-Key` to make a retry safe.
    """

    def handler() -> tuple[int, LinkOut]:
        link = service.bind(
            session,
            rt,
            principal,
            member_id_number=body.member_id_number,
            member_name=body.member_name,
            relation=body.relation,
            mutual_aid=body.mutual_aid,
            yearly_limit_fen=body.mutual_aid_yearly_limit_fen,
        )
        return 201, link_out(session, rt, link, principal)

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )


@router.post(
    "/family/links/{link_id}/consent",
    response_model=LinkOut,
    summary="Accept a pending link (the member, with verification)",
)
def consent(
    link_id: str,
    body: ConsentIn,
    request: Request,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """The bound member accepts with their payment password or a face check.

    403 `NOT_THE_MEMBER` for the holder; 409 `LINK_NOT_PENDING`; the verification
    errors `VERIFICATION_REQUIRED` (409), `VERIFICATION_FAILED` (403),
    `VERIFICATION_LOCKED` (423); and any binding rule that no longer holds.
    Send an `Idempotency-Key` to make a retry safe.
    """

    def handler() -> tuple[int, LinkOut]:
        link = service.consent(session, rt, principal, link_id, body.verification)
        return 200, link_out(session, rt, link, principal)

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )


@router.post(
    "/family/links/{link_id}/decline",
    response_model=LinkOut,
    summary="Decline (member) or withdraw (holder) a pending link",
)
def decline(
    link_id: str,
    request: Request,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Ends a link still waiting for consent. 409 `LINK_NOT_PENDING` otherwise; an
    active link is ended by unbinding. Send an `Idempotency-Key` to make a retry safe."""

    def handler() -> tuple[int, LinkOut]:
        link = service.decline(session, rt, principal, link_id)
        return 200, link_out(session, rt, link, principal)

    return run_for_request(request, session, rt, principal, key, {}, handler)


@router.get("/family/links/{link_id}", response_model=LinkOut, summary="One link")
def get_link(link_id: str, principal: PrincipalDep, session: SessionDep, rt: RuntimeDep) -> LinkOut:
    """For its holder and member, and for staff of its region. A clerk of the region
    sees the ID numbers in full, and that read is audited; anyone else sees them
    masked. Unknown ids and links the caller may not see answer 404 alike."""
    if principal.kind not in ("person", "staff"):
        raise forbidden()
    link = service.get_link(session, rt, principal, link_id)
    if may_reveal(principal, link):
        service.audit_full_read(session, rt, principal, link)
    return link_out(session, rt, link, principal, reveal=True)


@router.post(
    "/family/links/{link_id}/proof",
    status_code=201,
    response_model=ProofOut,
    summary="Upload the guardianship proof of a minor's binding",
)
async def upload_proof(
    link_id: str,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    document_type: Annotated[DocumentTypeName, Form()],
    file: Annotated[UploadFile, File(description="JPEG, PNG or PDF, at most 5 MB")],
) -> ProofOut:
    """The holder of a `pending_proof` link uploads the 出生医学证明, the 户口本 or a
    court's guardianship document; a reviewer of the member's region decides.

    422 `PROOF_FILE_INVALID` (empty, over 5 MB, or not a JPEG, PNG or PDF by its
    content); 403 `NOT_THE_HOLDER`; 409 `LINK_NOT_PENDING_PROOF`,
    `PROOF_ALREADY_PENDING`. The file is stored encrypted and shown only to
    reviewers and clerks of the member's region.
    """
    data = await file.read(proof_rules.MAX_FILE_BYTES + 1)
    proof = proofs.upload(session, rt, principal, link_id, document_type=document_type, data=data)
    return ProofOut(id=str(proof.id), link_id=str(proof.link_id), status=proof.status)


def _review_out(
    session: Session, rt: Runtime, item: proofs.QueueItem, principal: Principal
) -> ProofReviewOut:
    proof = item.proof
    return ProofReviewOut(
        id=str(proof.id),
        link_id=str(proof.link_id),
        status=proof.status,
        document_type=proof.document_type,
        channel=proof.channel,
        content_type=proof.content_type,
        size_bytes=proof.size_bytes,
        document_url=f"/api/v1/review/link-proofs/{proof.id}/document"
        if proof.content_cipher is not None
        else None,
        form_number=proof.form_number,
        created_at=proof.created_at,
        decided_at=proof.decided_at,
        decision_comment=proof.decision_comment,
        link=link_out(session, rt, item.link, principal),
    )


@router.get("/review/link-proofs", response_model=ProofPage, tags=["review"])
def proof_queue(
    principal: ReviewerDep,
    session: SessionDep,
    rt: RuntimeDep,
    status: ProofStatus = ProofStatus.pending,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ProofPage:
    """The reviewer's queue of uploaded guardianship proofs, of the member's region
    (the reviewer's own), oldest first."""
    items, total = proofs.review_queue(
        session, principal, status=status.value, page=page, page_size=page_size
    )
    return ProofPage(
        items=[_review_out(session, rt, item, principal) for item in items],
        total=total,
        page=page,
        page_size=page_size,
    )


@router.get(
    "/review/link-proofs/{proof_id}",
    response_model=ProofReviewOut,
    tags=["review"],
    summary="One guardianship proof",
)
def get_proof(
    proof_id: str, principal: StaffDep, session: SessionDep, rt: RuntimeDep
) -> ProofReviewOut:
    """For reviewers and clerks of the member's region; anything else is 404."""
    return _review_out(session, rt, proofs.get_for_staff(session, principal, proof_id), principal)


@router.get(
    "/review/link-proofs/{proof_id}/document",
    tags=["review"],
    summary="The uploaded proof itself",
    response_class=Response,
    responses={200: {"content": {ct: {} for ct in proof_rules.CONTENT_TYPES}}},
)
def proof_document(
    proof_id: str, principal: StaffDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """The file, for reviewers and clerks of the member's region, shown inline and
    never cached."""
    content_type, data = proofs.document(session, rt, principal, proof_id)
    return Response(
        data,
        media_type=content_type,
        headers={
            "Content-Disposition": "inline",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/review/link-proofs/{proof_id}/decision",
    response_model=ProofReviewOut,
    tags=["review"],
)
def decide_proof(
    proof_id: str,
    body: ProofDecisionIn,
    request: Request,
    principal: ReviewerDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Approve (the link becomes active, the binding rules decided again) or reject
    (the link ends) an uploaded proof. Reviewers of the member's region only; a
    decided proof is 409 `PROOF_NOT_PENDING`; rejecting needs a `comment`."""

    def handler() -> tuple[int, ProofReviewOut]:
        item = proofs.decide(session, rt, principal, proof_id, body.decision, body.comment)
        return 200, _review_out(session, rt, item, principal)

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )
