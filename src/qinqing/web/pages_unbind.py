"""解除绑定: the unbind check first (every blocker with what to do), then the
verification step and 确认解除, then the outcome (解除成功 or 审核中).

The page never decides a condition: the blockers are ``unbind.service.check``
(the same ``unbind.rules.blockers`` the API uses) and the submission is
``unbind.service.unbind``; this module only shows what they return.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth import service as auth
from qinqing.auth.verification import (
    face_provider,
)
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.payments import statements
from qinqing.runtime import Runtime
from qinqing.unbind import review as unbind_review
from qinqing.unbind import rules
from qinqing.unbind import service as unbind
from qinqing.web.forms import Errors, FormDep, attempt, form_key, new_form_key, once
from qinqing.web.render import page, redirect
from qinqing.web.session import PersonPage, prefs_of
from qinqing.web.verification_form import verification_from_form

router = APIRouter(include_in_schema=False)


def blocking_holds(session: Session, rt: Runtime, result: unbind.CheckResult) -> list[Any]:
    """The open holds behind an UNSETTLED_PAYMENTS blocker (amount, institution, when),
    for the person's and the clerk's unbind pages alike; none when it is not there."""
    if all(b.code != rules.UNSETTLED_PAYMENTS for b in result.blockers):
        return []
    return list(statements.link_open_holds(session, result.link, rt.clock.now()))


def _unbind_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str,
    *,
    key: str,
    errors: Errors | None = None,
) -> Response:
    locale = prefs_of(request).locale
    result = unbind.check(session, rt, principal, link_id)
    link = result.link
    out = link_out(session, rt, link, principal)
    other = out.member if out.your_role == "holder" else out.holder
    holds = blocking_holds(session, rt, result)
    account = auth.person_account(session, principal)
    face = face_provider(rt)
    return page(
        request,
        rt,
        session,
        "unbind.html",
        status_code=422 if errors else 200,
        link=out,
        other=other,
        eligible=result.eligible,
        blockers=[rules.render(b, locale) for b in result.blockers],
        holds=holds,
        review_required=result.review_required,
        region_name=rt.policies.region(link.region_code).name,
        password_set=account.payment_password_hash is not None,
        face_available=face is not None,
        idempotency_key=key,
        **(errors.context() if errors else {}),
    )


@router.get("/family/links/{link_id}/unbind")
def unbind_check(
    link_id: str, request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _unbind_page(request, session, rt, principal, link_id, key=new_form_key())


@router.post("/family/links/{link_id}/unbind")
def unbind_submit(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    key = form_key(form)
    reason = form.get("reason", "").strip()[:500] or None
    errors = Errors()
    verification = verification_from_form(request, rt, principal, form, errors)
    if verification is None:
        return _unbind_page(request, session, rt, principal, link_id, key=key, errors=errors)

    def handler() -> tuple[int, dict[str, str]]:
        outcome = unbind.unbind(session, rt, principal, link_id, verification, reason)
        return 200, {"request_id": str(outcome.request.id), "status": outcome.request.status}

    body: dict[str, Any] = {"verification": verification.model_dump(), "reason": reason}
    answer, refused = attempt(
        session, lambda: once(request, session, rt, principal, key, body, handler)
    )
    if refused is not None or answer is None:
        assert refused is not None
        if isinstance(refused, unbind.UnbindRefused):
            locale = prefs_of(request).locale
            for blocker in refused.blockers:
                shown = rules.render(blocker, locale)
                field = "payment_password" if blocker.code in rules.VERIFICATION_CODES else ""
                text = shown["message"] + (" " if locale == "en" else "") + (shown["hint"] or "")
                errors.add(field, text)
        else:
            raise refused
        return _unbind_page(request, session, rt, principal, link_id, key=key, errors=errors)
    return redirect(request, rt, f"/unbind-requests/{answer['request_id']}")


@router.get("/unbind-requests/{request_id}")
def outcome(
    request_id: str, request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    req, link = unbind_review.get_request(session, principal, request_id)
    out = link_out(session, rt, link, principal)
    other = out.member if out.your_role == "holder" else out.holder
    return page(request, rt, session, "unbind_outcome.html", req=req, link=out, other=other)
