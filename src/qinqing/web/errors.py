"""Friendly pages for every error on a web path; the API keeps its problem+json.

The handlers the API installed are wrapped, not replaced: a request under
``/api/v1`` (or the API docs, or a health probe) gets exactly the answer it
got before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from qinqing.kit.errors import DomainError
from qinqing.kit.logs import request_id_var
from qinqing.runtime import Runtime
from qinqing.web.forms import domain_text
from qinqing.web.render import page, redirect
from qinqing.web.session import CsrfRefused, LoginRequired, login_url

log = logging.getLogger("qinqing.web")
NOT_WEB = ("/api/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz")
Handler = Callable[[Request, Any], Awaitable[Response]]
AnyHandler = Callable[[Request, Any], Response | Awaitable[Response]]


def is_web(request: Request) -> bool:
    return not request.url.path.startswith(NOT_WEB)


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def error_page(
    request: Request, status: int, *, code: str | None = None, **params: Any
) -> Response:
    """The one error page: what happened, what to do, and the way back."""
    kind = {404: "not_found", 403: "forbidden", 500: "server"}.get(status, "refused")
    detail = domain_text(request, code, params) if code and kind == "refused" else None
    return page(
        request,
        _rt(request),
        None,
        "error.html",
        status_code=status,
        kind=kind,
        detail=detail,
        request_id=request_id_var.get(),
    )


def _wrap(api_handler: AnyHandler, web_handler: Handler) -> Handler:
    async def handler(request: Request, exc: Any) -> Response:
        if is_web(request):
            return await web_handler(request, exc)
        answer = api_handler(request, exc)
        return answer if isinstance(answer, Response) else await answer

    return handler


async def _domain(request: Request, exc: DomainError) -> Response:
    if exc.status == 401:
        return redirect(request, _rt(request), login_url(request.url.path, expired=True))
    return error_page(request, exc.status, code=exc.code, **exc.params)


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    return error_page(request, exc.status_code)


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    return error_page(request, 404)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_page(request, 500)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return redirect(request, _rt(request), login_url(exc.next_path, expired=exc.expired))


async def _csrf(request: Request, exc: Exception) -> Response:
    return page(
        request,
        _rt(request),
        None,
        "error.html",
        status_code=403,
        kind="csrf",
        detail=None,
        request_id=request_id_var.get(),
    )


def install(app: FastAPI) -> None:
    handlers = app.exception_handlers
    for cls, web_handler in (
        (DomainError, _domain),
        (StarletteHTTPException, _http),
        (RequestValidationError, _invalid),
        (Exception, _unexpected),
    ):
        app.add_exception_handler(cls, _wrap(handlers[cls], web_handler))
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRefused, _csrf)
