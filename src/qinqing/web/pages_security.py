"""账户与安全 under 我的: change the login password, see the devices logged in and log
them all out (after a lost phone)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth import service as auth
from qinqing.auth import sessions
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.runtime import Runtime
from qinqing.web.forms import Errors, FormDep, attempt, domain_text
from qinqing.web.render import page, redirect, t
from qinqing.web.session import PersonPage
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)

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
                source=request.client.host if request.client else "unknown",
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
