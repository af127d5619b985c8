"""登录, logout, the front door and the two remembered preferences (language, 长辈模式)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from qinqing.auth import service as auth
from qinqing.auth.tokens import principal_from_token
from qinqing.http.deps import RuntimeDep, SessionDep, client_address
from qinqing.kit.i18n import SUPPORTED
from qinqing.web.forms import Errors, FormDep, attempt, domain_text
from qinqing.web.render import page, redirect, t
from qinqing.web.session import (
    ELDER_COOKIE,
    LANG_COOKIE,
    PREF_MAX_AGE,
    SESSION_COOKIE,
    UserDep,
    safe_next,
    session_principal,
    set_cookie,
)
from qinqing.web.translations import N_

router = APIRouter(include_in_schema=False)


def _home_of(kind: str, role: str | None) -> str:
    if kind == "person":
        return "/me"
    return {"reviewer": "/review", "clerk": "/counter"}.get(role or "", "/staff")


@router.get("/")
def home(request: Request, user: UserDep, rt: RuntimeDep) -> Response:
    if user is None:
        return redirect(request, rt, "/login")
    return redirect(request, rt, _home_of(user.kind, user.role))


@router.get("/login")
def login_form(
    request: Request,
    user: UserDep,
    session: SessionDep,
    rt: RuntimeDep,
    next_path: Annotated[str | None, Query(alias="next", max_length=512)] = None,
    expired: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    if user is not None:
        return redirect(request, rt, _home_of(user.kind, user.role))
    return page(
        request,
        rt,
        session,
        "login.html",
        next_path=safe_next(next_path) if next_path else "",
        expired=expired == "1",
        login_value="",
    )


@router.post("/login")
def login_submit(request: Request, form: FormDep, session: SessionDep, rt: RuntimeDep) -> Response:
    login, password = form.get("login", "").strip(), form.get("password", "")
    totp = form.get("totp", "").strip() or None
    next_path = form.get("next", "")
    errors = Errors()
    if not login:
        errors.add("login", t(request, N_("请输入手机号")))
    if not password:
        errors.add("password", t(request, N_("请输入密码")))
    issued = None
    if not errors:
        source = client_address(request)
        issued, refused = attempt(
            session,
            lambda: auth.login(rt, login=login, password=password, source=source, totp=totp),
        )
        if refused is not None:
            # The second factor's refusals belong to its own box (opened to show them).
            where = "totp" if refused.code in ("TOTP_REQUIRED", "TOTP_INVALID") else "login"
            errors.add(where, domain_text(request, refused.code, refused.params))
    if errors or issued is None:
        return page(
            request,
            rt,
            session,
            "login.html",
            status_code=422,
            next_path=safe_next(next_path) if next_path else "",
            expired=False,
            login_value=login,
            **errors.context(),
        )
    # Who logged in decides where they land (a staff member never lands on /me).
    principal = principal_from_token(session, rt, issued.access_token)
    target = _home_of(principal.kind, principal.role)
    if next_path and principal.kind == "person" and safe_next(next_path) != "/":
        target = safe_next(next_path)
    response = redirect(request, rt, target)
    set_cookie(
        response, request, rt, SESSION_COOKIE, issued.access_token, max_age=issued.expires_in
    )
    return response


@router.post("/logout")
def logout(request: Request, form: FormDep, session: SessionDep, rt: RuntimeDep) -> Response:
    principal = session_principal(request, session, rt)
    if principal is not None:
        auth.logout(session, rt, principal)
    response = redirect(request, rt, "/login?done=logged_out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/prefs/{kind}")
def set_pref(
    kind: str,
    request: Request,
    rt: RuntimeDep,
    to: Annotated[str, Query(max_length=8)] = "",
    next_path: Annotated[str | None, Query(alias="next", max_length=512)] = None,
) -> Response:
    """Language and 长辈模式 switches: plain links (they only set a preference cookie),
    so they work on every page without JavaScript and without a form."""
    response = redirect(request, rt, safe_next(next_path))
    if kind == "lang" and to in SUPPORTED:
        set_cookie(response, request, rt, LANG_COOKIE, to, max_age=PREF_MAX_AGE, http_only=False)
    elif kind == "elder" and to in ("0", "1"):
        set_cookie(response, request, rt, ELDER_COOKIE, to, max_age=PREF_MAX_AGE, http_only=False)
    return response


@router.get("/staff")
def staff_home(request: Request, user: UserDep, session: SessionDep, rt: RuntimeDep) -> Response:
    if user is None:
        return redirect(request, rt, "/login?next=/staff")
    if user.kind != "staff":
        return redirect(request, rt, "/me")
    if user.role in ("reviewer", "clerk"):
        return redirect(request, rt, _home_of(user.kind, user.role))
    return page(request, rt, session, "staff.html")
