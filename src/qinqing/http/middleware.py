"""Pure ASGI middleware around every request: request id, access log, safety net,
response headers.

- ``X-Request-Id`` on every response, 500s included: a well-formed incoming one is
  kept (so a caller or proxy can correlate), otherwise a new one is made. The log
  records of the request carry it (``logging_setup.request_id_var``).
- An unexpected exception is answered here as a 500 problem+json that names the
  request id, and is *not* re-raised: the server then sees a finished response
  and keeps the keep-alive connection open.
- Headers: ``nosniff``, ``no-referrer``, ``X-Frame-Options: DENY``, HSTS when the
  request came over TLS, ``Cache-Control: no-store`` on every answer except the
  public, non-personal ones (region policy, contribution quote, static assets),
  and a ``Content-Security-Policy`` on HTML pages that have none of their own.

Pure ASGI rather than ``@app.middleware("http")`` (BaseHTTPMiddleware): no second
request object, no response streaming through an extra task, and exceptions
arrive here unchanged.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qinqing.http.problems import problem
from qinqing.kit import metrics
from qinqing.kit.logs import request_id_var

log = logging.getLogger("qinqing.http")
errors_log = logging.getLogger("qinqing.errors")

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Public answers with no personal data: they may be cached.
_CACHEABLE = re.compile(
    r"^/api/v1/regions/[^/]+/(policy|contribution-quote)$|^/static/|^/docs/assets/"
)
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` if well-formed (1..64 of ``[A-Za-z0-9._-]``), else new."""
    incoming = Headers(scope=scope).get("x-request-id", "")
    if _REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def _decorate(message: Message, rid: str, path: str, tls: bool) -> None:
    headers = MutableHeaders(scope=message)
    headers["X-Request-Id"] = rid
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if tls:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if not _CACHEABLE.search(path):
        headers.setdefault("Cache-Control", "no-store")
    if headers.get("content-type", "").startswith("text/html"):
        headers.setdefault("Content-Security-Policy", PAGE_CSP)


def route_template(scope: Scope) -> str | None:
    """The template of the route that answered (``/api/v1/family/links/{link_id}``),
    or None when none matched: the request's path with each path parameter's value
    put back as its ``{name}``, kept only when it ends in the route's own template (an
    included router's route knows its path without the prefix); else that template."""
    named = scope.get(metrics.ROUTE_KEY)
    if isinstance(named, str):
        return named
    template = getattr(scope.get("route"), "path_format", None)
    if not isinstance(template, str) or not template:
        return None
    path: str = scope.get("path", "")
    params = scope.get("path_params") or {}
    for name, raw in params.items():
        value = str(raw)
        if not value:
            continue
        if "/" in value:  # a {path:path} parameter: the path's tail
            if path.endswith("/" + value):
                path = path[: -len(value)] + "{" + name + "}"
            continue
        path = "/".join("{" + name + "}" if part == value else part for part in path.split("/"))
    return path if path.endswith(template) else template


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        token = request_id_var.set(rid)
        started = time.perf_counter()
        path: str = scope["path"]
        tls = scope.get("scheme") == "https"
        status = 0
        response_started = False

        async def send_decorated(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                _decorate(message, rid, path, tls)
            await send(message)

        try:
            try:
                await self.app(scope, receive, send_decorated)
            except Exception:
                errors_log.exception("unhandled error on %s %s", scope["method"], path)
                if response_started:
                    raise  # nothing to answer with any more; the server closes
                response = problem(Request(scope), 500, "INTERNAL_ERROR", extra={"request_id": rid})
                await response(scope, receive, send_decorated)
        finally:
            elapsed = time.perf_counter() - started
            # Paths carry opaque ids only, never personal data.
            log.info("%s %s %s %.1fms", scope["method"], path, status, elapsed * 1000)
            # The metrics carry the route's template, never the path.
            metrics.http_request(route_template(scope), scope["method"], status, elapsed)
            request_id_var.reset(token)
