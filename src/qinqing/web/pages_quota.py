"""共济额度 (a cross-region link's quota): both parties see what is in it, what open
bills hold and what is left, and every movement in and out; the holder moves money
into it from the personal account (转入共济额度), with the payment password.

The page decides nothing: the figures are ``quota.service.view`` and the top-up is
``quota.service.top_up`` (the same calls as ``GET/POST /api/v1/family/links/{id}/
quota``), through the API's idempotency layer like every form that moves money.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.accounting.statements import balance_of
from qinqing.auth import service as auth
from qinqing.auth.verification import (
    face_provider,
)
from qinqing.family import service as family
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.kit.errors import DomainError
from qinqing.persons.service import get_person
from qinqing.quota import service as quota
from qinqing.runtime import Runtime
from qinqing.unbind.rules import yuan
from qinqing.web.forms import (
    Errors,
    FormDep,
    attempt,
    domain_text,
    form_key,
    new_form_key,
    once,
    yuan_to_fen,
)
from qinqing.web.render import page, redirect, t
from qinqing.web.session import PersonPage
from qinqing.web.translations import N_
from qinqing.web.verification_form import verification_from_form

router = APIRouter(include_in_schema=False)

# Which field a top-up refusal belongs to, for the error summary's links.
TOP_UP_FIELDS = {
    "QUOTA_AMOUNT_INVALID": "amount",
    "INSUFFICIENT_BALANCE": "amount",
    "VERIFICATION_REQUIRED": "payment_password",
    "VERIFICATION_FAILED": "payment_password",
    "VERIFICATION_LOCKED": "payment_password",
    "PAYMENT_PASSWORD_NOT_SET": "payment_password",
}


def quota_of_link(
    session: Session, rt: Runtime, principal: Principal, link_id: str
) -> quota.QuotaView | None:
    """The link's quota as its parties see it, or None for a link that has none (within
    the holder's scope) or allows nothing yet (waiting for consent or proof)."""
    try:
        return quota.view(session, rt, principal, link_id)
    except DomainError as exc:
        if exc.code == "QUOTA_NOT_CROSS_REGION" or exc.status == 404:
            return None
        raise


def _refusal_text(request: Request, refused: DomainError) -> str:
    """The service's message; an amount beyond the top-up maximum in yuan, as the form
    asks for it (the API's text counts fen)."""
    max_fen = refused.params.get("max_fen")
    if refused.code == "QUOTA_AMOUNT_INVALID" and isinstance(max_fen, int):
        return t(request, N_("转入金额须大于 0 元，且不超过 %(max)s 元。"), max=yuan(max_fen))
    return domain_text(request, refused.code, refused.params)


def _quota_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str,
    *,
    key: str,
    amount: str = "",
    errors: Errors | None = None,
) -> Response:
    link = family.get_link(session, rt, principal, link_id)
    out = link_out(session, rt, link, principal)
    found = quota_of_link(session, rt, principal, link_id)
    if found is None:
        return redirect(request, rt, f"/family/links/{link.id}")
    holder = out.your_role == "holder"
    account = auth.person_account(session, principal)
    me = get_person(session, principal.person_id)
    assert me is not None
    personal = balance_of(session, me, rt.clock.now())
    return page(
        request,
        rt,
        session,
        "quota.html",
        status_code=422 if errors else 200,
        link=out,
        other=out.member if holder else out.holder,
        member_region=rt.policies.region(out.member.region_code).name
        if out.member.region_code
        else "",
        quota=found,
        can_top_up=holder and link.status == "active" and link.mutual_aid,
        personal_available_fen=personal.available_fen,
        password_set=account.payment_password_hash is not None,
        face_available=face_provider(rt) is not None,
        idempotency_key=key,
        amount=amount,
        **(errors.context() if errors else {}),
    )


@router.get("/family/links/{link_id}/quota")
def quota_page(
    link_id: str, request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _quota_page(request, session, rt, principal, link_id, key=new_form_key())


@router.post("/family/links/{link_id}/quota")
def top_up_submit(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    key = form_key(form)
    amount_text = form.get("amount", "").strip()[:20]
    errors = Errors()
    amount_fen = yuan_to_fen(amount_text) if amount_text else None
    if not amount_fen:
        errors.add("amount", t(request, N_("请填写转入金额，例如 500 或 500.50")))
    verification = verification_from_form(request, rt, principal, form, errors)
    if errors or not amount_fen or verification is None:
        return _quota_page(
            request, session, rt, principal, link_id, key=key, amount=amount_text, errors=errors
        )
    fen = amount_fen

    def handler() -> tuple[int, dict[str, Any]]:
        got = quota.top_up(session, rt, principal, link_id, fen, verification)
        return 201, {"link_id": str(got.link_id), "available_fen": got.available_fen}

    body: dict[str, Any] = {"amount_fen": fen, "verification": verification.model_dump()}
    answer, refused = attempt(
        session, lambda: once(request, session, rt, principal, key, body, handler)
    )
    if refused is not None or answer is None:
        assert refused is not None
        if refused.status == 404:
            raise refused
        errors.add(TOP_UP_FIELDS.get(refused.code, ""), _refusal_text(request, refused))
        return _quota_page(
            request, session, rt, principal, link_id, key=key, amount=amount_text, errors=errors
        )
    return redirect(request, rt, f"/family/links/{answer['link_id']}/quota?done=quota_topped_up")
