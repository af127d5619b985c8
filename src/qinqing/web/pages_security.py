"""账户与安全 under 我的: change the login password or the login phone (a code sent to the
new phone), see the devices logged in and log them all out (after a lost phone)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth import otp, payment_reset, phone_change, sessions
from qinqing.auth import service as auth
from qinqing.http.deps import RuntimeDep, SessionDep, client_address
from qinqing.runtime import Runtime
from qinqing.web.forms import Errors, FormDep, attempt, domain_text
from qinqing.web.render import page, redirect, t
from qinqing.web.session import PersonPage
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)

# The refusals that are about the new payment password itself.
PIN_CODES = ("PAYMENT_PASSWORD_FORMAT", "PAYMENT_PASSWORD_WEAK")

# Where each refusal of a password change is shown.
FIELDS = {
    "INVALID_CREDENTIALS": "password",
    "LOGIN_LOCKED": "password",
    "WEAK_PASSWORD": "new_password",
    "PASSWORD_UNCHANGED": "new_password",
}


def _page(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    errors: Errors | None = None,
) -> Response:
    return page(
        request,
        rt,
        session,
        "security.html",
        status_code=422 if errors else 200,
        devices=sessions.list_sessions(session, rt, principal),
        **(errors.context() if errors else {}),
    )


@router.get("/me/security")
def security(
    request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _page(request, session, rt, principal)


@router.post("/me/password")
def password_submit(
    request: Request, form: FormDep, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    current, new = form.get("password", ""), form.get("new_password", "")
    again = form.get("confirm_password", "")
    errors = Errors()
    if not current:
        errors.add("password", t(request, N_("请输入当前登录密码")))
    if not new:
        errors.add("new_password", t(request, N_("请输入新的登录密码")))
    elif new != again:
        errors.add("confirm_password", t(request, N_("两次输入的新密码不一致")))
    if not errors:
        session.commit()  # no open transaction while the hashes run
        _, refused = attempt(
            session,
            lambda: auth.change_password(
                session,
                rt,
                principal,
                password=current,
                new_password=new,
                source=client_address(request),
            ),
        )
        if refused is None:
            return redirect(request, rt, "/me/security?done=password")
        errors.add(
            FIELDS.get(refused.code, "password"),
            domain_text(request, refused.code, refused.params),
        )
    return _page(request, session, rt, principal, errors=errors)


@router.post("/me/sessions/end")
def end_sessions(
    request: Request, form: FormDep, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Log out everywhere, this browser included: back to the login page."""
    sessions.end_all(session, rt, principal)
    return redirect(request, rt, "/login?done=logged_out")


# --- the login phone ------------------------------------------------------------


def _phone_page(
    request: Request,
    session: Session,
    rt: Runtime,
    *,
    step: int,
    phone: str = "",
    errors: Errors | None = None,
) -> Response:
    return page(
        request,
        rt,
        session,
        "phone_change.html",
        status_code=422 if errors else 200,
        step=step,
        phone=phone,
        sent_text=domain_text(request, "SMS_CODE_REQUESTED") if step == 2 else "",
        **(errors.context() if errors else {}),
    )


@router.get("/me/phone")
def phone_form(
    request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _phone_page(request, session, rt, step=1)


@router.post("/me/phone/code")
def phone_code(
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
    background: BackgroundTasks,
) -> Response:
    """获取验证码 for the new login phone: the code goes to that phone."""
    phone = form.get("phone", "").strip()[:20]
    errors = Errors()
    if not phone:
        errors.add("phone", t(request, N_("请输入新的手机号")))
        return _phone_page(request, session, rt, step=1, errors=errors)
    message, refused = attempt(
        session,
        lambda: phone_change.request_code(session, rt, principal, phone, client_address(request)),
    )
    if refused is not None and refused.code != "SMS_CODE_THROTTLED":
        errors.add("phone", domain_text(request, refused.code, refused.params))
        return _phone_page(request, session, rt, step=1, phone=phone, errors=errors)
    otp.send(rt, message, later=background.add_task, commit=session.commit)
    return _phone_page(request, session, rt, step=2, phone=phone)


@router.post("/me/phone")
def phone_submit(
    request: Request, form: FormDep, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    phone, code = form.get("phone", "").strip()[:20], form.get("sms_code", "").strip()
    errors = Errors()
    if not code:
        errors.add("sms_code", t(request, N_("请输入短信验证码")))
        return _phone_page(request, session, rt, step=2, phone=phone, errors=errors)
    _, refused = attempt(
        session,
        lambda: phone_change.change(
            session, rt, principal, phone, code if code.isdigit() and len(code) == 6 else "x"
        ),
    )
    if refused is None:
        return redirect(request, rt, "/me/security?done=phone")
    field = "phone" if refused.code in ("PHONE_IN_USE", "PHONE_INVALID") else "sms_code"
    errors.add(field, domain_text(request, refused.code, refused.params))
    return _phone_page(request, session, rt, step=2, phone=phone, errors=errors)


# --- a forgotten or locked payment password ----------------------------------------


def _pin_page(
    request: Request,
    session: Session,
    rt: Runtime,
    *,
    step: int,
    errors: Errors | None = None,
) -> Response:
    return page(
        request,
        rt,
        session,
        "payment_reset.html",
        status_code=422 if errors else 200,
        step=step,
        sent_text=domain_text(request, "SMS_CODE_REQUESTED") if step == 2 else "",
        **(errors.context() if errors else {}),
    )


@router.get("/me/payment-password/reset")
def pin_reset_form(
    request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _pin_page(request, session, rt, step=1)


@router.post("/me/payment-password/reset/code")
def pin_reset_code(
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
    background: BackgroundTasks,
) -> Response:
    """The step-up: a code to the phone on the registry record."""
    message, refused = attempt(session, lambda: payment_reset.request_code(session, rt, principal))
    if refused is not None and refused.code != "SMS_CODE_THROTTLED":
        errors = Errors()
        errors.add("sms_code", domain_text(request, refused.code, refused.params))
        return _pin_page(request, session, rt, step=1, errors=errors)
    otp.send(rt, message, later=background.add_task, commit=session.commit)
    return _pin_page(request, session, rt, step=2)


@router.post("/me/payment-password/reset")
def pin_reset_submit(
    request: Request, form: FormDep, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    code = form.get("sms_code", "").strip()
    new = form.get("new_payment_password", "").strip()
    again = form.get("confirm_payment_password", "").strip()
    errors = Errors()
    if not code:
        errors.add("sms_code", t(request, N_("请输入短信验证码")))
    if not new:
        errors.add("new_payment_password", t(request, N_("请输入新的支付密码")))
    elif new != again:
        errors.add("confirm_payment_password", t(request, N_("两次输入的支付密码不一致")))
    if not errors:
        _, refused = attempt(
            session,
            lambda: payment_reset.reset(
                session,
                rt,
                principal,
                new_payment_password=new,
                sms_code=code if code.isdigit() and len(code) == 6 else "x",
            ),
        )
        if refused is None:
            return redirect(request, rt, "/me?done=payment_password")
        field = "new_payment_password" if refused.code in PIN_CODES else "sms_code"
        errors.add(field, domain_text(request, refused.code, refused.params))
    return _pin_page(request, session, rt, step=2, errors=errors)
