"""忘记密码: a person who forgot the login password sets a new one with the code sent
to the phone on the registry record (``auth.recovery``). Step 1 takes the name and
ID number (the same answer whatever the registry says); step 2 the code and the new
password. Every session of the account ends; the person logs in again."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.auth import otp, recovery
from qinqing.auth.sms import sms_provider
from qinqing.http.deps import RuntimeDep, SessionDep, client_address
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from qinqing.web.forms import Errors, FormDep, domain_text
from qinqing.web.pages_register import add_refusal, identity_fields
from qinqing.web.render import page, redirect, t
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)

FIELDS = {
    "WEAK_PASSWORD": "new_password",
    "SMS_CODE_INVALID": "sms_code",
    "SMS_CODE_EXPIRED": "sms_code",
    "SMS_CODE_USED": "sms_code",
    "SMS_CODE_LOCKED": "sms_code",
    "SMS_CODE_THROTTLED": "id_number",
}


def _page(
    request: Request,
    session: Session,
    rt: Runtime,
    *,
    step: int,
    values: dict[str, str],
    errors: Errors | None = None,
) -> Response:
    return page(
        request,
        rt,
        session,
        "password_reset.html",
        status_code=422 if errors else 200,
        step=step,
        values=values,
        sms_available=sms_provider(rt.settings) is not None,
        sent_text=domain_text(request, "SMS_CODE_REQUESTED") if step == 2 else "",
        ttl_minutes=int(otp.TTL.total_seconds() // 60),
        **(errors.context() if errors else {}),
    )


def _add(request: Request, errors: Errors, refused: DomainError, default: str) -> None:
    add_refusal(request, errors, refused, default, FIELDS)


@router.get("/password-reset")
def reset_form(request: Request, session: SessionDep, rt: RuntimeDep) -> Response:
    return _page(request, session, rt, step=1, values={"name": "", "id_number": ""})


@router.get("/password-reset/code")
def start_again(request: Request, rt: RuntimeDep) -> Response:
    """Step 2 is the answer to a POST; a reload starts over."""
    return redirect(request, rt, "/password-reset")


@router.post("/password-reset/code")
def send_code(
    request: Request,
    form: FormDep,
    session: SessionDep,
    rt: RuntimeDep,
    background: BackgroundTasks,
) -> Response:
    errors = Errors()
    values = identity_fields(request, form, errors)
    if errors:
        return _page(request, session, rt, step=1, values=values, errors=errors)
    try:
        message = recovery.request_code(
            rt, id_number=values["id_number"], name=values["name"], source=client_address(request)
        )
    except DomainError as refused:
        if refused.code != "SMS_CODE_THROTTLED":
            _add(request, errors, refused, "id_number")
            return _page(request, session, rt, step=1, values=values, errors=errors)
        message = None  # too soon for another: the person goes on with the one sent
    otp.send(rt, message, later=background.add_task)
    return _page(request, session, rt, step=2, values=values)


@router.post("/password-reset")
def reset_submit(request: Request, form: FormDep, session: SessionDep, rt: RuntimeDep) -> Response:
    errors = Errors()
    values = identity_fields(request, form, errors)
    code = form.get("sms_code", "").strip()
    new, again = form.get("new_password", ""), form.get("confirm_password", "")
    if not code:
        errors.add("sms_code", t(request, N_("请输入短信验证码")))
    if not new:
        errors.add("new_password", t(request, N_("请输入新的登录密码")))
    elif new != again:
        errors.add("confirm_password", t(request, N_("两次输入的新密码不一致")))
    if not errors:
        try:
            recovery.reset(
                rt,
                id_number=values["id_number"],
                name=values["name"],
                new_password=new,
                sms_code=code if code.isdigit() and len(code) == 6 else "x",
            )
        except DomainError as refused:
            _add(request, errors, refused, "sms_code")
        else:
            return redirect(request, rt, "/login?done=password_reset")
    return _page(request, session, rt, step=2, values=values, errors=errors)
