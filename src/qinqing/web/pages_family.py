"""我的家庭成员, 添加家庭成员, a member's page, the member's consent and decline.

A binding that needs guardianship proof (``pending_proof``) is explained before
it is submitted and leads to the member's page, where the holder uploads the
proof (``pages_proof``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth import service as auth
from qinqing.auth.verification import PaymentPasswordVerification
from qinqing.family import proof_rules, proofs
from qinqing.family import service as family
from qinqing.family.models import PENDING_STATUSES, FamilyLink
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.payments import statements
from qinqing.persons.service import get_person
from qinqing.runtime import Runtime
from qinqing.unbind import review as unbind_review
from qinqing.web import labels
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
from qinqing.web.pages_quota import quota_of_link
from qinqing.web.render import page, redirect, t
from qinqing.web.session import PersonPage
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)

# InvalidIdNumber codes (ID_NUMBER_LENGTH, ..._CHECK_DIGIT, ...) belong to the ID field.
ID_NUMBER_CODES = "ID_" + "NUMBER_"
# Which field a binding refusal belongs to, for the error summary's links.
BIND_FIELDS = {
    "MEMBER_NOT_FOUND": "member_id_number",
    "SELF_LINK": "member_id_number",
    "DUPLICATE_LINK": "member_id_number",
    "RELATION_NOT_ADMITTED": "relation",
    "RELATION_IMPLAUSIBLE": "relation",
    "RELATION_ALREADY_BOUND": "relation",
    "MINOR_NEEDS_PARENT": "relation",
    "MUTUAL_AID_RELATION_NOT_ADMITTED": "mutual_aid",
    "MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER": "mutual_aid",
    "MUTUAL_AID_OUT_OF_SCOPE": "mutual_aid",
    "MEMBER_NOT_INSURED": "mutual_aid",
    "ONE_DIRECTION": "mutual_aid",
    "YEARLY_LIMIT_INVALID": "yearly_limit",
}


def mutual_aid_choice(
    request: Request, values: dict[str, str], errors: Errors
) -> tuple[bool, int | None]:
    """The binding form's 家庭共济 choice and its optional yearly limit in fen (the
    app's form and the counter's alike); a limit that is not an amount is an error."""
    mutual_aid = values["mutual_aid"] == "yes"
    limit_fen: int | None = None
    if mutual_aid and values["yearly_limit"]:
        limit_fen = yuan_to_fen(values["yearly_limit"])
        if limit_fen is None:
            errors.add("yearly_limit", t(request, N_("每年限额请填写金额，例如 2000 或 2000.50")))
    return mutual_aid, limit_fen


# Where the holder is sent after a binding, by the link's status.
BOUND_DONE = {"pending_consent": "bound_pending", "pending_proof": "bound_proof"}


def usage(session: Session, rt: Runtime, link: FamilyLink) -> statements.LinkPayments | None:
    """This year's mutual-aid use; none for a link still waiting (consent or proof),
    which allows nothing and so shows no payments either."""
    if not link.mutual_aid or link.status in PENDING_STATUSES:
        return None
    return statements.link_payments(session, link, rt.clock.now())


def _entry(session: Session, rt: Runtime, link: FamilyLink, principal: Principal) -> dict[str, Any]:
    out = link_out(session, rt, link, principal)
    other = out.member if out.your_role == "holder" else out.holder
    return {"link": out, "other": other, "usage": usage(session, rt, link)}


@router.get("/me/family")
def my_family(
    request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    found = family.list_family(session, rt, principal)
    return page(
        request,
        rt,
        session,
        "family.html",
        as_holder=[_entry(session, rt, link, principal) for link in found["as_holder"]],
        as_member=[_entry(session, rt, link, principal) for link in found["as_member"]],
    )


def _bind_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    values: dict[str, str],
    errors: Errors | None = None,
) -> Response:
    person = get_person(session, principal.person_id)
    assert person is not None
    policy = rt.policies.policy(person.region_code)
    return page(
        request,
        rt,
        session,
        "family_add.html",
        status_code=422 if errors else 200,
        relations=[str(r) for r in policy.relations],
        mutual_aid_relations=[str(r) for r in policy.mutual_aid_relations],
        employee=person.scheme == "employee",
        consent_age=policy.consent_age,
        values=values,
        **(errors.context() if errors else {}),
    )


@router.get("/me/family/add")
def bind_form(
    request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    values = {"idempotency_key": new_form_key(), "mutual_aid": "no"}
    return _bind_page(request, session, rt, principal, values)


@router.post("/me/family/add")
def bind_submit(
    request: Request, form: FormDep, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    values = {
        "member_name": form.get("member_name", "").strip(),
        "member_id_number": form.get("member_id_number", "").strip().upper(),
        "relation": form.get("relation", ""),
        "mutual_aid": form.get("mutual_aid", "no"),
        "yearly_limit": form.get("yearly_limit", "").strip(),
        "idempotency_key": form_key(form),
    }
    errors = Errors()
    if not values["member_name"]:
        errors.add("member_name", t(request, N_("请输入家人的姓名")))
    if not values["member_id_number"]:
        errors.add("member_id_number", t(request, N_("请输入家人的身份证号码")))
    if not values["relation"]:
        errors.add("relation", t(request, N_("请选择家人与您的关系")))
    mutual_aid, limit_fen = mutual_aid_choice(request, values, errors)
    if errors:
        return _bind_page(request, session, rt, principal, values, errors)

    def handler() -> tuple[int, dict[str, str]]:
        link = family.bind(
            session,
            rt,
            principal,
            member_id_number=values["member_id_number"],
            member_name=values["member_name"],
            relation=values["relation"],
            mutual_aid=mutual_aid,
            yearly_limit_fen=limit_fen,
        )
        return 201, {"link_id": str(link.id), "status": link.status}

    body = {k: v for k, v in values.items() if k != "idempotency_key"}
    answer, refused = attempt(
        session,
        lambda: once(request, session, rt, principal, values["idempotency_key"], body, handler),
    )
    if refused is not None or answer is None:
        assert refused is not None
        codes = refused.extra.get("refusals") or [refused.code]
        for code in codes:
            params = refused.params if code == refused.code else {}
            field = BIND_FIELDS.get(
                code, "member_id_number" if code.startswith(ID_NUMBER_CODES) else ""
            )
            errors.add(field, domain_text(request, code, params))
        return _bind_page(request, session, rt, principal, values, errors)
    done = BOUND_DONE.get(answer["status"], "bound")
    return redirect(request, rt, f"/family/links/{answer['link_id']}?done={done}")


def proof_choices() -> list[tuple[str, str]]:
    """The guardianship documents as (code, zh-CN name) for a form's radio buttons."""
    return [(code, labels.PROOF_DOCUMENT[code]) for code in proof_rules.DOCUMENT_TYPES]


def link_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> Response:
    """A member's page; for a link waiting for guardianship proof also the proof sent
    (its status, and the reviewer's comment for the holder) and the upload form."""
    link = family.get_link(session, rt, principal, link_id)
    out = link_out(session, rt, link, principal)
    other = out.member if out.your_role == "holder" else out.holder
    proof = proofs.latest_proof(session, link) if not link.consent_required else None
    quota = quota_of_link(session, rt, principal, link_id) if link.via_quota else None
    return page(
        request,
        rt,
        session,
        "link.html",
        status_code=422 if errors else 200,
        link=out,
        other=other,
        usage=usage(session, rt, link),
        quota=quota,
        pending=unbind_review.pending_review(session, link),
        proof=proof,
        proof_choices=proof_choices(),
        accept=",".join(proof_rules.CONTENT_TYPES),
        max_mb=proof_rules.MAX_FILE_BYTES // (1024 * 1024),
        values=values or {"document_type": ""},
        **(errors.context() if errors else {}),
    )


@router.get("/family/links/{link_id}")
def member_page(
    link_id: str, request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return link_page(request, session, rt, principal, link_id)


def _consent_page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str,
    errors: Errors | None = None,
) -> Response:
    link = family.get_link(session, rt, principal, link_id)
    out = link_out(session, rt, link, principal)
    if out.your_role != "member" or out.status != "pending_consent":
        return redirect(request, rt, f"/family/links/{link.id}")
    account = auth.person_account(session, principal)
    return page(
        request,
        rt,
        session,
        "consent.html",
        status_code=422 if errors else 200,
        link=out,
        password_set=account.payment_password_hash is not None,
        **(errors.context() if errors else {}),
    )


@router.get("/family/links/{link_id}/consent")
def consent_form(
    link_id: str, request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _consent_page(request, session, rt, principal, link_id)


@router.post("/family/links/{link_id}/consent")
def consent_submit(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    pin = form.get("payment_password", "").strip()
    errors = Errors()
    if not pin:
        errors.add("payment_password", t(request, N_("请输入支付密码")))
        return _consent_page(request, session, rt, principal, link_id, errors)
    verification = PaymentPasswordVerification(method="payment_password", payment_password=pin[:16])
    link, refused = attempt(
        session, lambda: family.consent(session, rt, principal, link_id, verification)
    )
    if refused is not None or link is None:
        assert refused is not None
        if refused.status == 404:
            raise refused
        errors.add("payment_password", domain_text(request, refused.code, refused.params))
        return _consent_page(request, session, rt, principal, link_id, errors)
    return redirect(request, rt, f"/family/links/{link.id}?done=consented")


@router.post("/family/links/{link_id}/decline")
def decline_submit(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    link = family.decline(session, rt, principal, link_id)
    done = "declined" if link.member_id == principal.person_id else "withdrawn"
    return redirect(request, rt, f"/me/family?done={done}")
