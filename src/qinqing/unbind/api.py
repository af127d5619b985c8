"""Routes of the unbind part: the check, the submission, requests and the review queue.

Bank clients and the check: a GET carries no body and an ID number may never
appear in a URL, so a bank client names its customer on the check by the
customer's side of the link, ``?customer=holder|member``; on the unbind
itself (a POST) it sends ``customer_id_number`` in the JSON body, which must
match a party of the link. Both may be left out when only one party of the
link is the bank's customer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth.deps import PrincipalDep, staff_dep
from qinqing.family.models import FamilyLink
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.http.idempotency import IdempotencyKeyDep, run_for_request
from qinqing.http.problems import locale_of
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from qinqing.unbind import review as unbind_review
from qinqing.unbind import rules, service
from qinqing.unbind.models import RequestStatus, UnbindRequest
from qinqing.unbind.schemas import (
    BlockerOut,
    DecisionIn,
    RequestRef,
    UnbindCheckOut,
    UnbindIn,
    UnbindOut,
    UnbindRequestOut,
    UnbindRequestPage,
)

router = APIRouter(tags=["unbind"])

ReviewerDep = Annotated[Principal, staff_dep("reviewer")]
PartyParam = Literal["holder", "member"]


def request_out(
    session: Session, rt: Runtime, request: UnbindRequest, link: FamilyLink, principal: Principal
) -> UnbindRequestOut:
    return UnbindRequestOut(
        id=str(request.id),
        status=request.status,
        link_id=str(request.link_id),
        region_code=request.region_code,
        on_behalf_of=request.on_behalf_of,
        actor_kind=request.actor_kind,
        channel=request.channel,
        verification_method=request.verification_method,
        reason=request.reason,
        created_at=request.created_at,
        decided_at=request.decided_at,
        decision_comment=request.decision_comment,
        link=link_out(session, rt, link, principal),
    )


@router.get("/family/links/{link_id}/unbind-check", response_model=UnbindCheckOut)
def unbind_check(
    link_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    rt: RuntimeDep,
    on_behalf_of: Annotated[
        PartyParam | None,
        Query(description="clerks: the party served at the counter"),
    ] = None,
    customer: Annotated[
        PartyParam | None,
        Query(description="bank clients (scope `family`): the party that is the bank's customer"),
    ] = None,
) -> UnbindCheckOut:
    """The unbind check: whether the link can be unbound now, and every blocker at once,
    each with a message and a hint in the caller's language (``Accept-Language``).

    A party checks for themselves; a clerk of the region adds ``on_behalf_of``;
    a bank client adds ``customer`` (which side of the link its customer is).
    """
    if principal.kind != "staff" and on_behalf_of is not None:
        raise DomainError("PARAMETER_NOT_ALLOWED", 422, parameter="on_behalf_of")
    if principal.kind != "client" and customer is not None:
        raise DomainError("PARAMETER_NOT_ALLOWED", 422, parameter="customer")
    result = service.check(session, rt, principal, link_id, on_behalf_of or customer)
    locale = locale_of(request)
    return UnbindCheckOut(
        eligible=result.eligible,
        blockers=[BlockerOut(**rules.render(b, locale)) for b in result.blockers],
        on_behalf_of=result.on_behalf_of,
        review_required=result.review_required,
        region_code=result.link.region_code,
    )


@router.post("/family/links/{link_id}/unbind", response_model=UnbindOut)
def unbind(
    link_id: str,
    body: UnbindIn,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """解除绑定: unbind a family link, by either party (or a bank client for its customer).

    The answer's ``request.status`` is ``completed`` (the link has ended) or
    ``pending_review`` (the region reviews unbinds; the link is ``unbinding``).
    Refused: 409 ``UNBIND_REFUSED`` with every blocker. Send an
    ``Idempotency-Key`` to make a retry safe.
    """

    def handler() -> tuple[int, UnbindOut]:
        outcome = service.unbind(
            session,
            rt,
            principal,
            link_id,
            body.verification,
            body.reason,
            customer_id_number=body.customer_id_number,
        )
        return 200, UnbindOut(
            request=RequestRef(id=str(outcome.request.id), status=outcome.request.status),
            link=link_out(session, rt, outcome.link, principal),
        )

    try:
        return run_for_request(
            request, session, rt, principal, key, body.model_dump(mode="json"), handler
        )
    except service.UnbindRefused as exc:
        raise exc.localized(locale_of(request)) from None


@router.get("/unbind-requests/{request_id}", response_model=UnbindRequestOut)
def get_unbind_request(
    request_id: str, principal: PrincipalDep, session: SessionDep, rt: RuntimeDep
) -> UnbindRequestOut:
    """One unbind request: for its parties, staff of its region and the client that made it."""
    req, link = unbind_review.get_request(session, principal, request_id)
    return request_out(session, rt, req, link, principal)


@router.get("/review/unbind-requests", response_model=UnbindRequestPage, tags=["review"])
def review_queue(
    principal: ReviewerDep,
    session: SessionDep,
    rt: RuntimeDep,
    status: RequestStatus = RequestStatus.pending_review,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> UnbindRequestPage:
    """The reviewer's queue (审核): requests of the reviewer's own region, oldest first."""
    rows, total = unbind_review.review_queue(
        session, principal, status=status, page=page, page_size=page_size
    )
    return UnbindRequestPage(
        items=[request_out(session, rt, r, link, principal) for r, link in rows],
        total=total,
        page=page,
        page_size=page_size,
    )


@router.post(
    "/review/unbind-requests/{request_id}/decision",
    response_model=UnbindRequestOut,
    tags=["review"],
)
def decide(
    request_id: str,
    body: DecisionIn,
    request: Request,
    principal: ReviewerDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Approve (the link ends) or reject (the link is active again) a pending request.

    Reviewers of the request's region only; a request already decided is 409
    ``REQUEST_NOT_PENDING``; rejecting needs a ``comment``.
    """

    def handler() -> tuple[int, UnbindRequestOut]:
        outcome = unbind_review.decide(
            session, rt, principal, request_id, body.decision, body.comment
        )
        return 200, request_out(session, rt, outcome.request, outcome.link, principal)

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )
