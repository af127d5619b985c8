"""为家人缴纳居民医保 (共济缴费): from the member's page, the holder sees what it costs,
the enrollment window and from when cover starts, in plain words; confirms with the
payment password; and gets the receipt, which also appears in the statement.

The page decides nothing: the terms and refusals are ``resident.service.offers``
(the same ``resident.rules.terms`` the API uses) and the payment is
``resident.service.pay``.
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
from qinqing.family import service as family
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.persons.service import get_person
from qinqing.resident import service as resident
from qinqing.runtime import Runtime
from qinqing.web.forms import Errors, FormDep, attempt, domain_text, form_key, new_form_key, once
from qinqing.web.pages_quota import quota_of_link
from qinqing.web.render import page, redirect, t
from qinqing.web.session import PersonPage
from qinqing.web.translations import N_
from qinqing.web.verification_form import verification_from_form

router = APIRouter(include_in_schema=False)


def _pay_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str,
    *,
    key: str,
    chosen: str = "",
    errors: Errors | None = None,
    quota_short: bool = False,
) -> Response:
    link = family.get_link(session, rt, principal, link_id)
    out = link_out(session, rt, link, principal)
    if out.your_role != "holder":
        return redirect(request, rt, f"/family/links/{link.id}")
    offers = resident.offers(session, rt, link, rt.clock.now())
    payable = [o for o in offers if o.terms is not None and o.refusal is None and o.paid is None]
    refusals = [
        (o, domain_text(request, o.refusal.code, o.refusal.params))
        for o in offers
        if o.refusal is not None and o.paid is None
    ]
    account = auth.person_account(session, principal)
    # A cross-region link pays from its 共济额度 (resident.service.pay decides; the
    # page says so and shows what the quota has).
    quota = quota_of_link(session, rt, principal, link_id) if link.via_quota else None
    return page(
        request,
        rt,
        session,
        "resident_pay.html",
        status_code=422 if errors else 200,
        link=out,
        other=out.member,
        offers=offers,
        payable=payable,
        refusals=refusals,
        chosen=chosen or (str(payable[0].year) if payable else ""),
        usable=link.status == "active" and link.mutual_aid and out.member.scheme == "resident",
        password_set=account.payment_password_hash is not None,
        face_available=face_provider(rt) is not None,
        idempotency_key=key,
        quota=quota,
        quota_short=quota_short,
        **(errors.context() if errors else {}),
    )


@router.get("/family/links/{link_id}/resident")
def pay_form(
    link_id: str, request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _pay_page(request, session, rt, principal, link_id, key=new_form_key())


@router.post("/family/links/{link_id}/resident")
def pay_submit(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    key = form_key(form)
    year_text = form.get("year", "").strip()
    errors = Errors()
    year = int(year_text) if year_text.isdigit() and len(year_text) == 4 else None
    if year is None:
        errors.add("year", t(request, N_("请选择缴费年度")))
    verification = verification_from_form(request, rt, principal, form, errors)
    if errors or year is None or verification is None:
        return _pay_page(
            request, session, rt, principal, link_id, key=key, chosen=year_text, errors=errors
        )
    cover_year = year

    def handler() -> tuple[int, dict[str, str]]:
        paid = resident.pay(session, rt, principal, link_id, cover_year, verification)
        return 201, {"id": str(paid.id)}

    body: dict[str, Any] = {"year": cover_year, "verification": verification.model_dump()}
    answer, refused = attempt(
        session, lambda: once(request, session, rt, principal, key, body, handler)
    )
    if refused is not None or answer is None:
        assert refused is not None
        if refused.status == 404:
            raise refused
        field = "payment_password" if refused.code.startswith("VERIFICATION") else ""
        errors.add(field, domain_text(request, refused.code, refused.params))
        return _pay_page(
            request,
            session,
            rt,
            principal,
            link_id,
            key=key,
            chosen=year_text,
            errors=errors,
            quota_short=refused.code == "QUOTA_INSUFFICIENT",
        )
    return redirect(request, rt, f"/me/resident-contributions/{answer['id']}?done=resident_paid")


@router.get("/me/resident-contributions/{contribution_id}")
def receipt(
    contribution_id: str,
    request: Request,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    """The receipt (缴费凭证), for the holder who paid and the member it covers."""
    paid = resident.get_for(session, principal, contribution_id)
    holder = get_person(session, paid.holder_id)
    member = get_person(session, paid.member_id)
    return page(
        request,
        rt,
        session,
        "resident_receipt.html",
        paid=paid,
        holder_name=holder.name if holder else "",
        member_name=member.name if member else "",
        region_name=rt.policies.region(paid.region_code).name,
        you_paid=paid.holder_id == principal.person_id,
    )
