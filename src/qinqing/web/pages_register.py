"""注册: an insured person opens their app account by proving it is them.

Step 1 takes the name and ID number and asks ``auth.registration.request_code``
for a code to the phone on the registry record (获取验证码); the page then says
the same thing whether or not the person exists, the name matches or a code
went out. Step 2 takes the phone, a password and the 6-digit code (or, where a
face provider is configured, a face check) and calls
``auth.registration.register``; the new account is then logged in.

The registration service runs its own short transactions (the password hash
and the providers run outside any write transaction), so these routes use the
request's session only to render.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.auth import otp, registration
from qinqing.auth import service as auth
from qinqing.auth.sms import sms_provider
from qinqing.auth.verification import face_provider, simulated_face_token
from qinqing.http.deps import RuntimeDep, SessionDep, client_address
from qinqing.identity import ric
from qinqing.kit.errors import DomainError
from qinqing.persons.service import find_by_id_number
from qinqing.runtime import Runtime
from qinqing.web.forms import Errors, FormDep, domain_text
from qinqing.web.pages_family import ID_NUMBER_CODES
from qinqing.web.render import page, redirect, t
from qinqing.web.session import SESSION_COOKIE, UserDep, set_cookie
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)

# Which field a refusal belongs to, for the error summary's links.
REGISTER_FIELDS = {
    "PHONE_INVALID": "phone",
    "PHONE_IN_USE": "phone",
    "WEAK_PASSWORD": "password",
    "SMS_CODE_INVALID": "sms_code",
    "SMS_CODE_EXPIRED": "sms_code",
    "SMS_CODE_USED": "sms_code",
    "SMS_CODE_LOCKED": "sms_code",
    "SMS_CODE_THROTTLED": "sms_code",
    "VERIFICATION_FAILED": "method",
}


def _page(
    request: Request,
    session: Session,
    rt: Runtime,
    *,
    step: int,
    values: dict[str, str],
    errors: Errors | None = None,
    sent: bool = False,
) -> Response:
    return page(
        request,
        rt,
        session,
        "register.html",
        status_code=422 if errors else 200,
        step=step,
        values=values,
        sent=sent,
        sms_available=sms_provider(rt.settings) is not None,
        sent_text=domain_text(request, "SMS_CODE_REQUESTED") if sent else "",
        face_available=face_provider(rt) is not None,
        resend_after=rt.settings.sms_resend_seconds,
        ttl_minutes=max(1, rt.settings.sms_code_ttl_seconds // 60),
        **(errors.context() if errors else {}),
    )


def identity_fields(request: Request, form: dict[str, str], errors: Errors) -> dict[str, str]:
    """The name and ID number typed (trimmed, bounded), with a message for each missing
    one: step 1 of registration and of 忘记密码."""
    values = {
        "name": form.get("name", "").strip()[:64],
        "id_number": form.get("id_number", "").strip().upper()[:32],
    }
    if not values["name"]:
        errors.add("name", t(request, N_("请输入您的姓名")))
    if not values["id_number"]:
        errors.add("id_number", t(request, N_("请输入您的身份证号码")))
    return values


def add_refusal(
    request: Request,
    errors: Errors,
    refused: DomainError,
    default: str,
    fields: dict[str, str] = REGISTER_FIELDS,
) -> None:
    """A refusal next to the field it is about (``fields`` by code; ID number codes to
    the ID number), else ``default``."""
    field = fields.get(
        refused.code, "id_number" if refused.code.startswith(ID_NUMBER_CODES) else default
    )
    errors.add(field, domain_text(request, refused.code, refused.params))


@router.get("/register")
def register_form(request: Request, user: UserDep, session: SessionDep, rt: RuntimeDep) -> Response:
    if user is not None:
        return redirect(request, rt, "/")
    return _page(request, session, rt, step=1, values={"name": "", "id_number": ""})


@router.get("/register/code")
@router.get("/register/face")
def start_again(request: Request, rt: RuntimeDep) -> Response:
    """Step 2 is the answer to a POST; a reload or a language switch starts over."""
    return redirect(request, rt, "/register")


@router.post("/register/code")
def request_code(
    request: Request,
    form: FormDep,
    session: SessionDep,
    rt: RuntimeDep,
    background: BackgroundTasks,
) -> Response:
    """获取验证码: the same page whatever the registry says (``request_code`` may
    return no message; the person only learns it when no SMS arrives)."""
    errors = Errors()
    values = identity_fields(request, form, errors)
    if errors:
        return _page(request, session, rt, step=1, values=values, errors=errors)
    try:
        message = registration.request_code(
            rt, id_number=values["id_number"], name=values["name"], source=client_address(request)
        )
    except DomainError as refused:
        if refused.code == "SMS_CODE_THROTTLED":
            # Too soon for another code: the person goes on with the one sent before.
            errors.add("sms_code", domain_text(request, refused.code, refused.params))
            return _page(request, session, rt, step=2, values=values, errors=errors, sent=True)
        add_refusal(request, errors, refused, "id_number")
        return _page(request, session, rt, step=1, values=values, errors=errors)
    otp.send(rt, message, later=background.add_task)
    return _page(request, session, rt, step=2, values=values, sent=True)


@router.post("/register/face")
def choose_face(request: Request, form: FormDep, session: SessionDep, rt: RuntimeDep) -> Response:
    """人脸核验 instead of a code (only where a face provider is configured)."""
    errors = Errors()
    values = identity_fields(request, form, errors)
    step = 1 if errors or face_provider(rt) is None else 2
    page_values = {**values, "method": "face"}
    return _page(request, session, rt, step=step, values=page_values, errors=errors or None)


def _face_token(rt: Runtime, session: Session, id_number: str, name: str) -> str:
    """The simulated provider's answer for the person these details name. A real
    provider's client-side check would hand its token back instead. Details that
    name nobody get a token that fails, exactly as a failed face check does."""
    try:
        number = ric.parse(id_number, rt.clock.now().date()).number
    except DomainError:
        return "-"
    person = find_by_id_number(session, rt.vault, number)
    if person is None or person.name != name:
        return "-"
    return simulated_face_token(person.id)


@router.post("/register")
def register_submit(
    request: Request, form: FormDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    errors = Errors()
    values = identity_fields(request, form, errors)
    method = "face" if form.get("method") == "face" and face_provider(rt) is not None else "sms"
    values.update(phone=form.get("phone", "").strip()[:32], method=method)
    password = form.get("password", "")[:128]
    again = form.get("confirm_password", "")[:128]
    code = form.get("sms_code", "").strip()[:16]
    if not values["phone"]:
        errors.add("phone", t(request, N_("请输入手机号")))
    if not password:
        errors.add("password", t(request, N_("请设置登录密码")))
    elif password != again:
        errors.add("confirm_password", t(request, N_("两次输入的密码不一致")))
    if method == "sms" and not code:
        errors.add("sms_code", t(request, N_("请输入短信验证码")))
    if errors:
        return _page(request, session, rt, step=2, values=values, errors=errors, sent=True)
    proof: dict[str, Any] = (
        {"face_token": _face_token(rt, session, values["id_number"], values["name"])}
        if method == "face"
        else {"sms_code": code}
    )
    session.rollback()  # the service runs its own transactions; nothing is held meanwhile
    try:
        registration.register(
            rt,
            id_number=values["id_number"],
            name=values["name"],
            phone=values["phone"],
            password=password,
            **proof,
        )
    except DomainError as refused:
        add_refusal(request, errors, refused, "sms_code" if method == "sms" else "method")
        return _page(request, session, rt, step=2, values=values, errors=errors, sent=True)
    try:
        issued = auth.login(
            rt, login=values["phone"], password=password, source=client_address(request)
        )
    except DomainError:
        # The account exists; a login refusal (a throttle, say) only means logging in by hand.
        return redirect(request, rt, "/login?done=registered")
    response = redirect(request, rt, "/me?done=registered")
    set_cookie(
        response, request, rt, SESSION_COOKIE, issued.access_token, max_age=issued.expires_in
    )
    return response
