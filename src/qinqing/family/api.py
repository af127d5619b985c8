"""Family routes: bind, consent, decline, 我的家庭成员, one link (docs/guide.md §5)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from qinqing.auth.deps import PersonDep, PrincipalDep
from qinqing.family import service
from qinqing.family.schemas import BindIn, ConsentIn, FamilyOut
from qinqing.family.views import LinkOut, link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.http.idempotency import IdempotencyKeyDep, run_for_request
from qinqing.kit.errors import forbidden

router = APIRouter(tags=["family"])


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
    must accept it (`pending_consent`); a younger child is bound at once (`active`).

    Refusals: 422 `MEMBER_NOT_FOUND` (no insured person with that ID number and name),
    `SELF_LINK`, `RELATION_NOT_ADMITTED`, `MUTUAL_AID_RELATION_NOT_ADMITTED`,
    `YEARLY_LIMIT_INVALID`, `ID_NUMBER_*`; 409 `HOLDER_NOT_ACTIVE`, `RELATION_IMPLAUSIBLE`,
    `MINOR_NEEDS_PARENT`, `DUPLICATE_LINK`, `RELATION_ALREADY_BOUND`, `MEMBER_LIMIT_REACHED`,
    `MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER`, `MEMBER_NOT_INSURED`, `MUTUAL_AID_OUT_OF_SCOPE`,
    `ONE_DIRECTION`. The problem document lists every refusal found in `refusals`.
    Send an `Idempotency-Key` to make a retry safe.
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
    """For its holder and member, and for staff of its region (who see ID numbers in
    full). Unknown ids and links the caller may not see answer 404 alike."""
    if principal.kind not in ("person", "staff"):
        raise forbidden()
    link = service.get_link(session, rt, principal, link_id)
    return link_out(session, rt, link, principal)
