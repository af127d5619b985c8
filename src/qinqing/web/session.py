"""The web session, its CSRF token and the two remembered preferences.

The session cookie holds the same opaque access token ``POST /auth/login``
issues (channel ``app`` for persons, the role's channel for staff): one
expiry, one revocation on logout, one look-up (``principal_from_token``).
It is ``HttpOnly`` and ``SameSite=Lax``, and ``Secure`` whenever the request
came over TLS (``X-Forwarded-Proto`` from a trusted proxy counts) and always
in production.

CSRF: a signed double-submit token. A random nonce lives in its own cookie;
each form carries ``HMAC(vault key, nonce : sha256(session token))``, so a
token is worthless without both cookies of this browser and changes at login
and logout. A POST whose token does not match is refused before any work.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from qinqing.access import roles
from qinqing.access.principal import Principal
from qinqing.auth.tokens import principal_from_token, token_digest
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.kit.errors import DomainError
from qinqing.kit.i18n import DEFAULT_LOCALE, SUPPORTED
from qinqing.runtime import Runtime

SESSION_COOKIE = "qq_session"
CSRF_COOKIE = "qq_csrf"
LANG_COOKIE = "qq_lang"
ELDER_COOKIE = "qq_elder"
CSRF_FIELD = "csrf_token"
PREF_MAX_AGE = 365 * 24 * 3600


class LoginRequired(Exception):
    """No valid session: the page sends the person to 登录 and back afterwards."""

    def __init__(self, next_path: str, expired: bool) -> None:
        super().__init__("login required")
        self.next_path = next_path
        self.expired = expired


class CsrfRefused(Exception):
    """A form posted without its token (or with another browser's)."""


@dataclass(frozen=True, slots=True)
class Prefs:
    locale: str
    elder: bool


def prefs_of(request: Request) -> Prefs:
    lang = request.cookies.get(LANG_COOKIE, DEFAULT_LOCALE)
    return Prefs(
        locale=lang if lang in SUPPORTED else DEFAULT_LOCALE,
        elder=request.cookies.get(ELDER_COOKIE) == "1",
    )


def secure_cookies(request: Request, rt: Runtime) -> bool:
    return request.url.scheme == "https" or rt.settings.is_production


def set_cookie(
    response: Response,
    request: Request,
    rt: Runtime,
    name: str,
    value: str,
    *,
    max_age: int | None,
    http_only: bool = True,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=secure_cookies(request, rt),
        httponly=http_only,
        samesite="lax",
    )


def safe_next(raw: str | None) -> str:
    """A local path to go back to (never another site: no scheme, no ``//``)."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")) or len(raw) > 512:
        return "/"
    if any(ch in raw for ch in "\r\n\\") or raw.startswith("/api/"):
        return "/"
    return raw


def login_url(next_path: str, *, expired: bool = False) -> str:
    url = "/login?next=" + quote(safe_next(next_path), safe="/")
    return url + ("&expired=1" if expired else "")


# --- who is there -----------------------------------------------------------------


def session_principal(request: Request, session: Session, rt: Runtime) -> Principal | None:
    """The person or staff member of the session cookie, or None. Remembers on the
    request whether a cookie was there but no longer valid (an expired session)."""
    if getattr(request.state, "web_principal_known", False):
        known: Principal | None = request.state.web_principal
        return known
    token = request.cookies.get(SESSION_COOKIE)
    principal: Principal | None = None
    request.state.session_expired = False
    if token:
        try:
            found = principal_from_token(session, rt, token)
        except DomainError:
            request.state.session_expired = True
        else:
            principal = found if found.kind in ("person", "staff") else None
    request.state.web_principal = principal
    request.state.web_principal_known = True
    return principal


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + ("?" + query if query and request.method == "GET" else "")


def optional_user(request: Request, session: SessionDep, rt: RuntimeDep) -> Principal | None:
    return session_principal(request, session, rt)


def _signed_in(request: Request, session: SessionDep, rt: RuntimeDep) -> Principal:
    principal = session_principal(request, session, rt)
    if principal is None:
        raise LoginRequired(_here(request), bool(request.state.session_expired))
    return principal


def require_person(request: Request, session: SessionDep, rt: RuntimeDep) -> Principal:
    principal = _signed_in(request, session, rt)
    roles.require_person(principal)
    return principal


def require_reviewer(request: Request, session: SessionDep, rt: RuntimeDep) -> Principal:
    principal = _signed_in(request, session, rt)
    roles.require_reviewer(principal)
    return principal


def require_clerk(request: Request, session: SessionDep, rt: RuntimeDep) -> Principal:
    principal = _signed_in(request, session, rt)
    roles.require_clerk(principal)
    return principal


def require_staff(request: Request, session: SessionDep, rt: RuntimeDep) -> Principal:
    """Any staff member; the service called decides which role and region it serves."""
    principal = _signed_in(request, session, rt)
    roles.require_staff(principal)
    return principal


UserDep = Annotated[Principal | None, Depends(optional_user)]
PersonPage = Annotated[Principal, Depends(require_person)]
ReviewerPage = Annotated[Principal, Depends(require_reviewer)]
ClerkPage = Annotated[Principal, Depends(require_clerk)]
StaffPage = Annotated[Principal, Depends(require_staff)]


# --- CSRF ---------------------------------------------------------------------------


def csrf_nonce(request: Request) -> str:
    """This browser's nonce; a new one (set on the response by ``render``) if none."""
    nonce = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_nonce", None)
    if not nonce:
        nonce = secrets.token_urlsafe(24)
        request.state.new_csrf_nonce = nonce
    return nonce


def csrf_token_for(rt: Runtime, nonce: str, session_token: str | None) -> str:
    bound = token_digest(session_token) if session_token else "-"
    return rt.vault.index("web-csrf", f"{nonce}:{bound}")


def csrf_token(request: Request, rt: Runtime) -> str:
    session_token = getattr(request.state, "new_session_token", None)
    if session_token is None:
        session_token = request.cookies.get(SESSION_COOKIE)
    return csrf_token_for(rt, csrf_nonce(request), session_token)


def check_csrf(request: Request, rt: Runtime, submitted: str | None) -> None:
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not submitted:
        raise CsrfRefused()
    expected = csrf_token_for(rt, nonce, request.cookies.get(SESSION_COOKIE))
    if not hmac.compare_digest(expected, submitted):
        raise CsrfRefused()
