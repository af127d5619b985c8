"""A reviewer decides an uploaded guardianship proof (监护证明): the link it is for
(relation, holder, the child, their masked ID numbers), the document itself
shown inline, and approve or reject with a comment — ``family.proofs.decide``,
which re-decides the binding rules on approval and ends the link on rejection.

The document is served by its own page route for the staff session
(``family.proofs.document``: reviewers and clerks of the child's region): a GET
that changes nothing, never cached, never sniffed, shown inline.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.family import proofs
from qinqing.family.rules import REVIEW_COMMENT_MAX
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.runtime import Runtime
from qinqing.web.forms import Errors, FormDep, attempt, domain_text, form_key, new_form_key, once
from qinqing.web.pages_proof import shown_params
from qinqing.web.render import page, redirect
from qinqing.web.review_form import read_decision, refused_field
from qinqing.web.session import ReviewerPage, StaffPage

router = APIRouter(include_in_schema=False)

# The document's own headers: shown inline (in the review page's <img> or frame),
# never kept, never taken for anything but its checked type. Only the review
# page (same origin) may frame it; an image gets no rights at all.
DOCUMENT_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
}
IMAGE_CSP = "default-src 'none'; frame-ancestors 'self'; sandbox"
PDF_CSP = "frame-ancestors 'self'"


def _detail(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    proof_id: str,
    *,
    key: str,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> Response:
    item = proofs.get_for_staff(session, principal, proof_id)
    return page(
        request,
        rt,
        session,
        "review_proof.html",
        status_code=422 if errors else 200,
        proof=item.proof,
        link=link_out(session, rt, item.link, principal),
        idempotency_key=key,
        values=values or {"decision": "", "comment": ""},
        comment_max=REVIEW_COMMENT_MAX,
        **(errors.context() if errors else {}),
    )


@router.get("/review/proofs/{proof_id}")
def detail(
    proof_id: str, request: Request, principal: ReviewerPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _detail(request, session, rt, principal, proof_id, key=new_form_key())


@router.get("/review/proofs/{proof_id}/document")
def document(proof_id: str, principal: StaffPage, session: SessionDep, rt: RuntimeDep) -> Response:
    """The uploaded file itself, for the review page's <img> or frame."""
    content_type, data = proofs.document(session, rt, principal, proof_id)
    csp = PDF_CSP if content_type == "application/pdf" else IMAGE_CSP
    return Response(
        data,
        media_type=content_type,
        headers={**DOCUMENT_HEADERS, "Content-Security-Policy": csp},
    )


@router.post("/review/proofs/{proof_id}")
def decide(
    proof_id: str,
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
            request, session, rt, principal, proof_id, key=key, values=values, errors=errors
        )

    def handler() -> tuple[int, dict[str, str]]:
        item = proofs.decide(session, rt, principal, proof_id, decision, chosen.comment)
        return 200, {"id": str(item.proof.id), "status": item.proof.status}

    answer, refused = attempt(
        session, lambda: once(request, session, rt, principal, key, dict(values), handler)
    )
    if refused is not None or answer is None:
        assert refused is not None
        if refused.status == 404:
            raise refused
        field = refused_field(refused.code)
        # Approval decides the binding rules again: every refusal found is listed.
        for code in refused.extra.get("refusals") or [refused.code]:
            params = refused.params if code == refused.code else {}
            errors.add(field, domain_text(request, code, shown_params(request, params)))
        return _detail(
            request, session, rt, principal, proof_id, key=key, values=values, errors=errors
        )
    return redirect(request, rt, f"/review/proofs/{answer['id']}?done=proof_decided")
