"""Rendering pages: one Jinja2 environment, the shared page context, safe headers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from qinqing.identity.masking import mask_id_number
from qinqing.persons.service import get_person
from qinqing.runtime import Runtime
from qinqing.unbind.rules import local_day, local_time, yuan
from qinqing.web import labels
from qinqing.web.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    PREF_MAX_AGE,
    csrf_token,
    prefs_of,
    session_principal,
    set_cookie,
)
from qinqing.web.translations import AUTONYMS, current_locale, gettext, ngettext

# Everything a page loads comes from Qinqing itself; no inline script or style.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show personal data: never kept by a shared computer's cache.
    "Cache-Control": "no-store",
}
STATIC_VERSION = "6"


def money(fen: int | None) -> str:
    """Fen shown as yuan in the page's language (exact: integer arithmetic)."""
    if fen is None:
        return ""
    return gettext("%(amount)s 元") % {"amount": yuan(int(fen))}


# ``2026年12月1日 17:49（北京时间）`` / ``December 1, 2026, 17:49 (Beijing time)``: the
# date, and the clock with its time zone.
_CLOCK = re.compile(r"^(.*?\S) (\d{1,2}:\d{2})( ?)(\S.*)$")


def _moment(value: datetime | None) -> Markup:
    """An instant in Beijing time, saying so (``…（北京时间）``), for text. A line may
    break between the date, the clock and the note of the time zone, never inside any
    of them (a narrow table cell would otherwise leave ``间）`` on a line of its own;
    kept as one piece, clock and note made a December date's table cell too wide for
    a phone in 长辈模式)."""
    if value is None:
        return Markup("")
    shown = local_time(value.isoformat(), current_locale.get())
    parts = _CLOCK.match(shown)
    if parts is None:
        return Markup('<span class="nowrap">{}</span>').format(shown)
    date, clock, space, zone = parts.groups()
    # The Chinese note follows the clock without a space; <wbr> lets a line break there.
    gap = Markup(" ") if space else Markup("<wbr>")
    return Markup(
        '<span class="nowrap">{}</span> <span class="nowrap">{}</span>{}<span class="nowrap">{}</span>'
    ).format(date, clock, gap, zone)


def person_name(name: str | None) -> Markup:
    """A person's name kept on one line (``.nm``): a phone's line break never falls
    inside 张建国. Escaped; for text, never for an attribute."""
    return Markup('<span class="nm">{}</span>').format(name or "")


def _day(value: datetime | str | None) -> str:
    if value is None:
        return ""
    iso = value if isinstance(value, str) else value.date().isoformat()
    return local_day(iso, current_locale.get())


def _label(table: dict[str, str], code: str | None) -> str:
    if code is None:
        return ""
    return gettext(table[code]) if code in table else code


def _build_env() -> Environment:
    env = Environment(
        loader=PackageLoader("qinqing.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(gettext=gettext, ngettext=ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = money
    env.filters["moment"] = _moment
    env.filters["day"] = _day
    env.filters["masked"] = mask_id_number
    env.filters["nm"] = person_name
    env.globals["label"] = _label
    env.globals["labels"] = labels
    env.globals["static_version"] = STATIC_VERSION
    return env


ENV = _build_env()


def switch_url(request: Request, kind: str, value: str) -> str:
    here = request.url.path + ("?" + request.url.query if request.url.query else "")
    if request.method != "GET":
        here = request.url.path
    return f"/prefs/{kind}?to={value}&next={quote(here, safe='')}"


def base_context(request: Request, rt: Runtime, session: Session | None) -> dict[str, Any]:
    prefs = prefs_of(request)
    if session is not None:
        user = session_principal(request, session, rt)
    else:
        # An error page: the request's session is closed, but the route may have
        # already found who is there (then the header keeps its navigation).
        user = getattr(request.state, "web_principal", None)
    user_name = None
    if user is not None and user.kind == "person" and session is not None:
        person = get_person(session, user.person_id)
        user_name = person.name if person else None
    other = "en" if prefs.locale == "zh-CN" else "zh-CN"
    return {
        "request": request,
        "locale": prefs.locale,
        "elder": prefs.elder,
        "user": user,
        "user_name": user_name,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request, rt),
        "other_locale": other,
        "other_locale_name": AUTONYMS[other],
        "lang_url": switch_url(request, "lang", other),
        "elder_url": switch_url(request, "elder", "0" if prefs.elder else "1"),
        "errors": {},
        "error_list": [],
        "done": None,
    }


def finish(request: Request, rt: Runtime, response: HTMLResponse | RedirectResponse) -> Any:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    nonce = getattr(request.state, "new_csrf_nonce", None)
    if nonce and not request.cookies.get(CSRF_COOKIE):
        set_cookie(response, request, rt, CSRF_COOKIE, nonce, max_age=PREF_MAX_AGE)
    return response


def page(
    request: Request,
    rt: Runtime,
    session: Session | None,
    template: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a template in the visitor's language with the shared context."""
    ctx = base_context(request, rt, session)
    ctx.update(context)
    token = current_locale.set(ctx["locale"])
    try:
        done = request.query_params.get("done")
        if done in labels.DONE:
            ctx["done"] = gettext(labels.DONE[done])
        html = ENV.get_template(template).render(ctx)
    finally:
        current_locale.reset(token)
    response = HTMLResponse(html, status_code=status_code)
    return finish(request, rt, response)  # type: ignore[no-any-return]


def redirect(request: Request, rt: Runtime, url: str) -> RedirectResponse:
    return finish(request, rt, RedirectResponse(url, status_code=303))  # type: ignore[no-any-return]


def t(request: Request, message: str, **params: Any) -> str:
    """Translate one message outside a template, in the visitor's language."""
    token = current_locale.set(prefs_of(request).locale)
    try:
        text = gettext(message)
    finally:
        current_locale.reset(token)
    return text % params if params else text


def t_names(request: Request, message: str, **names: str) -> Markup:
    """:func:`t` for a sentence that names persons: the text escaped, each name kept
    on one line (:func:`person_name`)."""
    return escape(t(request, message)) % {k: person_name(v) for k, v in names.items()}
