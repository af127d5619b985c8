"""The reviewer queue (审核): the region's pending unbind requests and the
guardianship proofs uploaded for its children (``pages_proof_review``), one
request, approve or reject with a comment. Reviewers log in on the same 登录 page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.family import proofs
from qinqing.family.models import ProofStatus
from qinqing.family.rules import REVIEW_COMMENT_MAX
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.runtime import Runtime
from qinqing.unbind import review as unbind_review
from qinqing.unbind.models import RequestStatus
from qinqing.web.forms import Errors, FormDep, attempt, domain_text, form_key, new_form_key, once
from qinqing.web.render import page, redirect
from qinqing.web.review_form import read_decision, refused_field
from qinqing.web.session import ReviewerPage

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20


@router.get("/review")
def queue(
    request: Request,
    principal: ReviewerPage,
    session: SessionDep,
    rt: RuntimeDep,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    proof_page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    rows, total = unbind_review.review_queue(
        session, principal, status=RequestStatus.pending_review, page=page_no, page_size=PAGE_SIZE
    )
    items = [(req, link_out(session, rt, link, principal)) for req, link in rows]
    found, proofs_total = proofs.review_queue(
        session, principal, status=ProofStatus.pending.value, page=proof_page, page_size=PAGE_SIZE
    )
    proof_items = [(i.proof, link_out(session, rt, i.link, principal)) for i in found]
    return page(
        request,
        rt,
        session,
        "review_queue.html",
        items=items,
        total=total,
        page_no=page_no,
        has_next=page_no * PAGE_SIZE < total,
        proof_items=proof_items,
        proofs_total=proofs_total,
        proof_page=proof_page,
        proofs_next=proof_page * PAGE_SIZE < proofs_total,
        region_name=rt.policies.region(principal.region_code or "").name,
    )


def _detail(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    request_id: str,
    *,
    key: str,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> Response:
    req, link = unbind_review.get_request(session, principal, request_id)
    return page(
        request,
        rt,
        session,
        "review_request.html",
        status_code=422 if errors else 200,
        req=req,
        link=link_out(session, rt, link, principal),
        idempotency_key=key,
        values=values or {"decision": "", "comment": ""},
        comment_max=REVIEW_COMMENT_MAX,
        **(errors.context() if errors else {}),
    )


@router.get("/review/requests/{request_id}")
def detail(
    request_id: str,
    request: Request,
    principal: ReviewerPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    return _detail(request, session, rt, principal, request_id, key=new_form_key())


@router.post("/review/requests/{request_id}")
def decide(
    request_id: str,
    request: Request,
    form: FormDep,
    principal: ReviewerPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    key = form_key(form)
    errors = Errors()
    chosen = read_decision(request, form, errors)
    values, decision = chosen.values, chosen.decision
    if decision is None:
        return _detail(
            request, session, rt, principal, request_id, key=key, values=values, errors=errors
        )

    def handler() -> tuple[int, dict[str, str]]:
        outcome = unbind_review.decide(session, rt, principal, request_id, decision, chosen.comment)
        return 200, {"status": outcome.request.status}

    body = dict(values)
    _, refused = attempt(session, lambda: once(request, session, rt, principal, key, body, handler))
    if refused is not None:
        if refused.status == 404:
            raise refused
        field = refused_field(refused.code)
        errors.add(field, domain_text(request, refused.code, refused.params))
        return _detail(
            request, session, rt, principal, request_id, key=key, values=values, errors=errors
        )
    return redirect(request, rt, f"/review/requests/{request_id}?done=decided")
