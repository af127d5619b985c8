"""The counter desk (窗口办理, ``/counter``): a clerk finds the person who came to
the agency by ID number, sees their links, unbinds or binds on their behalf
with their ID document and the paper form's number, and prints the receipt.

Every decision is ``counter.service``'s (which asks ``unbind.rules.blockers``
and ``family.rules.refusals``); the pages only show what it returns. The ID
number is typed into a POST form and never appears in a URL: the person's page
is addressed by the person's internal id, and opening it is a look-up, audited
like the first.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth import rules as id_rules
from qinqing.counter import receipt as receipt_pdf
from qinqing.counter import service as counter
from qinqing.counter.api import render_blocker
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.kit.errors import not_found
from qinqing.persons.service import person_view
from qinqing.runtime import Runtime
from qinqing.unbind import review as unbind_review
from qinqing.unbind import service as unbind
from qinqing.web.forms import Errors, FormDep, attempt, domain_text, form_key, new_form_key, once
from qinqing.web.pages_family import BIND_FIELDS, ID_NUMBER_CODES, mutual_aid_choice
from qinqing.web.pages_unbind import blocking_holds
from qinqing.web.render import page, redirect, t
from qinqing.web.session import ClerkPage, prefs_of
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)

Party = Literal["holder", "member"]
DOCUMENT_TYPES = id_rules.DOCUMENT_TYPES
# Which field a counter refusal belongs to, for the error summary's links.
UNBIND_FIELDS = {
    "FORM_NUMBER_INVALID": "form_number",
    "VERIFICATION_FAILED": "document_number",
    "VERIFICATION_LOCKED": "document_number",
}


def _party(raw: str | None) -> Party:
    return "member" if raw == "member" else "holder"


def _document_type(raw: str | None) -> id_rules.DocumentType:
    return "medical_card" if raw == "medical_card" else "resident_id"


# --- look-up ---------------------------------------------------------------------


def _lookup_form(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
    status_code: int = 422,
) -> Response:
    return page(
        request,
        rt,
        session,
        "counter_lookup.html",
        status_code=status_code if errors else 200,
        values=values or {"reason": ""},
        region_name=rt.policies.region(principal.region_code or "").name,
        **(errors.context() if errors else {}),
    )


@router.get("/counter")
def lookup_form(
    request: Request, principal: ClerkPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _lookup_form(request, session, rt, principal)


def _person_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    found: counter.LookupResult,
) -> Response:
    person = person_view(rt.vault, found.person, reveal=found.reveal)

    def entry(link: Any) -> dict[str, Any]:
        # In full only after a look-up (a POST, audited); masked on the GET page.
        out = link_out(session, rt, link, principal, reveal=found.reveal)
        role: Party = "holder" if out.holder.id == person["id"] else "member"
        other = out.member if role == "holder" else out.holder
        return {"link": out, "role": role, "other": other}

    return page(
        request,
        rt,
        session,
        "counter_person.html",
        person=person,
        region_name=rt.policies.region(found.person.region_code).name,
        reveal=found.reveal,
        as_holder=[entry(x) for x in found.as_holder],
        as_member=[entry(x) for x in found.as_member],
        locked_until=found.id_document_locked_until,
    )


@router.post("/counter/lookup")
def lookup_submit(
    request: Request, form: FormDep, principal: ClerkPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    number = form.get("id_number", "").strip().upper()
    reason = form.get("reason", "").strip()[:200]
    errors = Errors()
    if not number:
        errors.add("id_number", t(request, N_("请输入证件上的身份证号码")))
        return _lookup_form(
            request, session, rt, principal, values={"reason": reason}, errors=errors
        )
    found, refused = attempt(
        session, lambda: counter.lookup(session, rt, principal, number, reason or None)
    )
    if refused is not None or found is None:
        assert refused is not None
        if refused.code == "NOT_FOUND":
            errors.add(
                "id_number", t(request, N_("本地区没有这个身份证号码的参保人员，请核对证件。"))
            )
        else:
            errors.add("id_number", domain_text(request, refused.code, refused.params))
        return _lookup_form(
            request,
            session,
            rt,
            principal,
            values={"reason": reason},
            errors=errors,
            status_code=404 if refused.code == "NOT_FOUND" else 422,
        )
    return _person_page(request, session, rt, principal, found)


@router.get("/counter/lookup")
def lookup_again(request: Request, principal: ClerkPage, rt: RuntimeDep) -> Response:
    """The result is the answer to a POST; a reload or a language switch starts over."""
    return redirect(request, rt, "/counter")


def _lookup_by_id(
    session: Session, rt: Runtime, principal: Principal, person_id: str
) -> counter.LookupResult:
    """The person's page again (after an unbind, from a link's page): masked and not
    audited, as any page a GET shows (counter.view)."""
    try:
        pid = uuid.UUID(person_id)
    except ValueError:
        raise not_found("person") from None
    return counter.view(session, rt, principal, pid)


@router.get("/counter/persons/{person_id}")
def person_page(
    person_id: str, request: Request, principal: ClerkPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    found = _lookup_by_id(session, rt, principal, person_id)
    return _person_page(request, session, rt, principal, found)


# --- unbind on behalf --------------------------------------------------------------


def _unbind_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str,
    party: Party,
    *,
    key: str,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> Response:
    locale = prefs_of(request).locale
    result = unbind.check(session, rt, principal, link_id, party)
    out = link_out(session, rt, result.link, principal)
    served = out.holder if party == "holder" else out.member
    other = out.member if party == "holder" else out.holder
    return page(
        request,
        rt,
        session,
        "counter_unbind.html",
        status_code=422 if errors else 200,
        link=out,
        party=party,
        served=served,
        other=other,
        eligible=result.eligible,
        blockers=[render_blocker(b, locale) for b in result.blockers],
        holds=blocking_holds(session, rt, result),
        review_required=result.review_required,
        region_name=rt.policies.region(result.link.region_code).name,
        idempotency_key=key,
        values=values or {"document_type": "resident_id", "form_number": "", "reason": ""},
        **(errors.context() if errors else {}),
    )


@router.get("/counter/links/{link_id}/unbind")
def unbind_check(
    link_id: str,
    request: Request,
    principal: ClerkPage,
    session: SessionDep,
    rt: RuntimeDep,
    on_behalf_of: str = "holder",
) -> Response:
    party = _party(on_behalf_of)
    return _unbind_page(request, session, rt, principal, link_id, party, key=new_form_key())


@router.post("/counter/links/{link_id}/unbind")
def unbind_submit(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: ClerkPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    key = form_key(form)
    party = _party(form.get("on_behalf_of"))
    values = {
        "document_type": _document_type(form.get("document_type")),
        "form_number": form.get("form_number", "").strip()[:64],
        "reason": form.get("reason", "").strip()[:500],
    }
    number = form.get("document_number", "").strip().upper()[:32]
    errors = Errors()
    if not number:
        errors.add("document_number", t(request, N_("请输入证件上的号码")))
    if not values["form_number"]:
        errors.add("form_number", t(request, N_("请输入纸质申请表的编号")))
    if errors:
        return _unbind_page(
            request, session, rt, principal, link_id, party, key=key, values=values, errors=errors
        )
    document = counter.Document(_document_type(values["document_type"]), number)

    def handler() -> tuple[int, dict[str, str]]:
        outcome = counter.unbind(
            session,
            rt,
            principal,
            link_id=link_id,
            on_behalf_of=party,
            document=document,
            form_number=values["form_number"],
            reason=values["reason"] or None,
        )
        return 200, {"request_id": str(outcome.request.id), "status": outcome.request.status}

    # The key's stored hash covers the document number (keyed, as the API's does).
    body = {"on_behalf_of": party, "document_number": number, **values}
    answer, refused = attempt(
        session, lambda: once(request, session, rt, principal, key, body, handler)
    )
    if refused is not None or answer is None:
        assert refused is not None
        if refused.status == 404:
            raise refused
        locale = prefs_of(request).locale
        if isinstance(refused, unbind.UnbindRefused):
            for blocker in refused.blockers:
                shown = render_blocker(blocker, locale)
                text = shown["message"] + (" " if locale == "en" else "") + (shown["hint"] or "")
                errors.add(UNBIND_FIELDS.get(blocker.code, ""), text)
        else:
            field = UNBIND_FIELDS.get(
                refused.code, "document_number" if refused.code.startswith(ID_NUMBER_CODES) else ""
            )
            errors.add(field, domain_text(request, refused.code, refused.params))
        return _unbind_page(
            request, session, rt, principal, link_id, party, key=key, values=values, errors=errors
        )
    return redirect(request, rt, f"/counter/unbind-requests/{answer['request_id']}")


@router.get("/counter/unbind-requests/{request_id}")
def outcome(
    request_id: str, request: Request, principal: ClerkPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    data = counter.receipt(session, rt, principal, request_id)
    _req, link = unbind_review.get_request(session, principal, request_id)
    served_id = link.holder_id if data.on_behalf_of == "holder" else link.member_id
    return page(
        request,
        rt,
        session,
        "counter_outcome.html",
        data=data,
        served_id=str(served_id),
        document_label=id_rules.DOCUMENT_LABELS,
    )


@router.get("/counter/unbind-requests/{request_id}/receipt.pdf")
def receipt(
    request_id: str, request: Request, principal: ClerkPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    """The same receipt as the API's, for the clerk's browser session (打印回执)."""
    data = counter.receipt(session, rt, principal, request_id)
    return receipt_pdf.as_response(data, disposition="attachment")


# --- bind on behalf ----------------------------------------------------------------

BIND_DEFAULTS = {
    "holder_name": "",
    "holder_document_type": "resident_id",
    "member_name": "",
    "member_document_type": "resident_id",
    "relation": "",
    "mutual_aid": "no",
    "yearly_limit": "",
    "form_number": "",
}
COUNTER_BIND_FIELDS = {
    **BIND_FIELDS,
    "NOT_FOUND": "holder_document_number",
    "MEMBER_NOT_FOUND": "member_document_number",
    "SELF_LINK": "member_document_number",
    "DUPLICATE_LINK": "member_document_number",
    "FORM_NUMBER_INVALID": "form_number",
}


def _bind_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    values: dict[str, str],
    errors: Errors | None = None,
) -> Response:
    policy = rt.policies.policy(principal.region_code or "")
    return page(
        request,
        rt,
        session,
        "counter_bind.html",
        status_code=422 if errors else 200,
        relations=[str(r) for r in policy.relations],
        values=values,
        **(errors.context() if errors else {}),
    )


@router.get("/counter/bind")
def bind_form(
    request: Request, principal: ClerkPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _bind_page(
        request, session, rt, principal, {**BIND_DEFAULTS, "idempotency_key": new_form_key()}
    )


@router.post("/counter/bind")
def bind_submit(
    request: Request, form: FormDep, principal: ClerkPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    values = {name: form.get(name, default).strip()[:64] for name, default in BIND_DEFAULTS.items()}
    values["idempotency_key"] = form_key(form)
    numbers = {
        side: form.get(f"{side}_document_number", "").strip().upper()[:32]
        for side in ("holder", "member")
    }
    errors = Errors()
    for side, what in (("holder", N_("绑定人")), ("member", N_("家庭成员"))):
        if not values[f"{side}_name"]:
            errors.add(f"{side}_name", t(request, N_("请输入%(who)s的姓名"), who=t(request, what)))
        if not numbers[side]:
            errors.add(
                f"{side}_document_number",
                t(request, N_("请输入%(who)s证件上的号码"), who=t(request, what)),
            )
    if not values["relation"]:
        errors.add("relation", t(request, N_("请选择家庭成员与绑定人的关系")))
    if not values["form_number"]:
        errors.add("form_number", t(request, N_("请输入纸质申请表的编号")))
    mutual_aid, limit_fen = mutual_aid_choice(request, values, errors)
    if errors:
        return _bind_page(request, session, rt, principal, values, errors)
    holder = counter.Document(
        _document_type(values["holder_document_type"]), numbers["holder"], values["holder_name"]
    )
    member = counter.Document(
        _document_type(values["member_document_type"]), numbers["member"], values["member_name"]
    )

    def handler() -> tuple[int, dict[str, str]]:
        link = counter.bind(
            session,
            rt,
            principal,
            holder=holder,
            member=member,
            relation=values["relation"],
            mutual_aid=mutual_aid,
            yearly_limit_fen=limit_fen,
            form_number=values["form_number"],
        )
        return 201, {
            "link_id": str(link.id),
            "holder_id": str(link.holder_id),
            "status": link.status,
        }

    body = {k: v for k, v in values.items() if k != "idempotency_key"} | {
        f"{side}_document_number": n for side, n in numbers.items()
    }
    answer, refused = attempt(
        session,
        lambda: once(request, session, rt, principal, values["idempotency_key"], body, handler),
    )
    if refused is not None or answer is None:
        assert refused is not None
        codes = refused.extra.get("refusals") or [refused.code]
        for code in codes:
            params = refused.params if code == refused.code else {}
            field = COUNTER_BIND_FIELDS.get(
                code, "holder_document_number" if code.startswith(ID_NUMBER_CODES) else ""
            )
            text = (
                t(request, N_("本地区没有与证件号码和姓名一致的参保人员，请核对绑定人的证件。"))
                if code == "NOT_FOUND"
                else domain_text(request, code, params)
            )
            errors.add(field, text)
        return _bind_page(request, session, rt, principal, values, errors)
    # A child bound by someone who is not a registered guardian waits for the proof,
    # which the holder's record then offers to check (查验监护证明).
    done = "counter_bound_proof" if answer.get("status") == "pending_proof" else "counter_bound"
    return redirect(request, rt, f"/counter/persons/{answer['holder_id']}?done={done}")
