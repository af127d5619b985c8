"""我的: the profile and balances, the personal-account statement, the payment
password and notifications. Each page calls the same functions as the API."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.accounting import api as ledger_api
from qinqing.auth import api as auth_api
from qinqing.auth import service as auth
from qinqing.banks import service as banks
from qinqing.family import service as family
from qinqing.http.deps import CursorPaging, RuntimeDep, SessionDep, client_address
from qinqing.kit.errors import DomainError, not_found
from qinqing.notify import api as notify_api
from qinqing.persons.service import get_person
from qinqing.runtime import Runtime
from qinqing.unbind.rules import local_day, yuan
from qinqing.web import labels
from qinqing.web.forms import Errors, FormDep, attempt, domain_text
from qinqing.web.render import page, redirect, t, t_names
from qinqing.web.session import PersonPage, prefs_of
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)
GUARDIAN_NOTICE = "link.guardian_notice"

PASSWORD_FIELDS = {
    "INVALID_CREDENTIALS": "password",
    "LOGIN_LOCKED": "password",
    "VERIFICATION_FAILED": "payment_password",
    "VERIFICATION_LOCKED": "payment_password",
    "PAYMENT_PASSWORD_FORMAT": "new_payment_password",
    "PAYMENT_PASSWORD_WEAK": "new_payment_password",
}


@router.get("/me")
def me(request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep) -> Response:
    profile = auth_api.me(principal, session, rt)
    return page(request, rt, session, "me.html", me=profile)


@router.get("/me/account", dependencies=[CursorPaging])
def statement(
    request: Request,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    st = ledger_api.my_entries(principal, session, rt, limit=20, before=before)
    return page(request, rt, session, "account.html", st=st)


@router.get("/me/payment-password")
def payment_password_form(
    request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    account = auth.person_account(session, principal)
    return page(
        request,
        rt,
        session,
        "payment_password.html",
        is_set=account.payment_password_hash is not None,
    )


@router.post("/me/payment-password")
def payment_password_submit(
    request: Request, form: FormDep, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    # The first time the login password confirms it is you; a change needs the
    # current payment password (a forgotten one is reset with a code instead).
    is_set = auth.person_account(session, principal).payment_password_hash is not None
    session.commit()  # no open transaction while the hashes run
    proof_field = "payment_password" if is_set else "password"
    proof = form.get(proof_field, "")
    new = form.get("new_payment_password", "").strip()
    again = form.get("confirm_payment_password", "").strip()
    errors = Errors()
    if not proof:
        errors.add(
            proof_field,
            t(request, N_("请输入当前支付密码") if is_set else N_("请输入登录密码")),
        )
    if not new:
        errors.add("new_payment_password", t(request, N_("请输入新的支付密码")))
    elif new != again:
        errors.add("confirm_payment_password", t(request, N_("两次输入的支付密码不一致")))
    if not errors:
        _, refused = attempt(
            session,
            lambda: auth.set_payment_password(
                session,
                rt,
                principal,
                new_payment_password=new,
                source=client_address(request),
                **{proof_field: proof},
            ),
        )
        if refused is None:
            return redirect(request, rt, "/me?done=payment_password")
        field = PASSWORD_FIELDS.get(refused.code, proof_field)
        errors.add(field, domain_text(request, refused.code, refused.params))
    account = auth.person_account(session, principal)
    return page(
        request,
        rt,
        session,
        "payment_password.html",
        status_code=422,
        is_set=account.payment_password_hash is not None,
        **errors.context(),
    )


def _notice_text(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    kind: str,
    payload: dict[str, Any],
) -> tuple[str, str | None]:
    """The notice as a sentence, and the page it is about."""
    template = labels.NOTICE.get(kind, labels.NOTICE_OTHER)
    link_id = payload.get("link_id")
    name, href = "", None
    if kind == GUARDIAN_NOTICE:
        # A registered guardian is no party of the link: the notice names the holder
        # (masked), and there is no page of the link to open.
        masked, child = payload.get("holder_name_masked"), payload.get("member_name_masked")
        return (
            t_names(
                request,
                template,
                name=masked if isinstance(masked, str) else "",
                child=child if isinstance(child, str) else "",
            ),
            None,
        )
    if kind.startswith("bank_link."):
        code, masked = payload.get("bank_code"), payload.get("account_number_masked")
        code = code if isinstance(code, str) else ""
        bank = banks.bank_names(session, {code} if code else set()).get(code, code)
        account = masked if isinstance(masked, str) else ""
        return t(request, template, bank=bank, account=account), "/me/bank-links"
    if isinstance(link_id, str):
        try:
            link = family.get_link(session, rt, principal, link_id)
        except DomainError:
            link = None
        if link is not None:
            other = link.member_id if link.holder_id == principal.person_id else link.holder_id
            person = get_person(session, other)
            name = person.name if person else ""
            href = f"/family/links/{link.id}"
    request_id = payload.get("request_id")
    if kind.startswith("unbind.") and isinstance(request_id, str):
        href = f"/unbind-requests/{request_id}"
    if kind.startswith("resident."):
        return _resident_notice(request, template, name, payload)
    if kind.startswith("quota."):
        return _quota_notice(request, template, name, payload), f"{href}/quota" if href else None
    if kind.startswith("account."):
        href = "/me/security"
    return t_names(request, template, name=name), href


def _resident_notice(
    request: Request, template: str, name: str, payload: dict[str, Any]
) -> tuple[str, str | None]:
    """A resident contribution's notice: who, which year, how much, cover from when;
    it opens the receipt."""
    amount = payload.get("amount_fen")
    cover = payload.get("cover_starts_on")
    locale = prefs_of(request).locale
    text = t_names(
        request,
        template,
        name=name,
        year=str(payload.get("year", "")),
        amount=t(
            request, N_("%(amount)s 元"), amount=yuan(amount if isinstance(amount, int) else 0)
        ),
        cover=local_day(cover, locale) if isinstance(cover, str) else "",
    )
    cid = payload.get("contribution_id")
    return text, f"/me/resident-contributions/{cid}" if isinstance(cid, str) else None


def _quota_notice(request: Request, template: str, name: str, payload: dict[str, Any]) -> str:
    """A 共济额度 notice: who, how much moved and what the quota holds after it."""

    def amount(key: str) -> str:
        fen = payload.get(key)
        return t(request, N_("%(amount)s 元"), amount=yuan(fen if isinstance(fen, int) else 0))

    return t_names(
        request, template, name=name, amount=amount("amount_fen"), quota=amount("quota_fen")
    )


@router.get("/me/notifications", dependencies=[CursorPaging])
def notifications(
    request: Request,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    cursor = None
    if before:
        try:
            cursor = uuid.UUID(before)
        except ValueError:
            raise not_found("notification") from None
    found = notify_api.my_notifications(principal, session, limit=20, before=cursor)
    items = []
    for n in found.items:
        text, href = _notice_text(request, session, rt, principal, n.kind, n.payload)
        items.append({"text": text, "href": href, "at": n.created_at})
    return page(
        request, rt, session, "notifications.html", items=items, next_before=found.next_before
    )
