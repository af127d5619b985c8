"""RFC 9457 problem+json for every error: domain, validation, HTTP and unexpected."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from qinqing.kit import i18n
from qinqing.kit.db import RETRY_AFTER_SECONDS
from qinqing.kit.errors import DomainError

log = logging.getLogger("qinqing.errors")
PROBLEM = "application/problem+json"

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
}


def locale_of(request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"))


def problem(
    request: Request,
    status: int,
    code: str,
    params: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    message, hint = i18n.text(code, locale_of(request), params)
    body: dict[str, Any] = {
        "type": f"urn:qinqing:problem:{code.lower().replace('_', '-')}",
        "title": message,
        "status": status,
        "code": code,
    }
    if hint:
        body["detail"] = hint
    for key, value in (params or {}).items():
        if key not in body and isinstance(value, str | int | float | bool):
            body[key] = value
    body.update(extra or {})
    if "error" in body and "error_description" not in body:
        # OAuth 2.0 errors (RFC 6749 §5.2): client libraries show error_description,
        # which must be printable ASCII, so it is the English message.
        body["error_description"] = i18n.text(code, "en", params)[0]
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def retry_later(request: Request) -> JSONResponse:
    """503 RETRY_LATER: the request's transaction kept losing a conflict with
    concurrent ones (it was rolled back each time; nothing of it was applied)."""

    seconds = {"retry_after": RETRY_AFTER_SECONDS}
    return problem(
        request, 503, "RETRY_LATER", seconds, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


# What a browser shows while the database is away (pages render from the database,
# so this one does not): plain, both languages, no script.
_UNAVAILABLE_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>服务暂时不可用 Service unavailable</title></head>
<body style="font:20px/1.5 sans-serif;max-width:36em;margin:2em auto;padding:0 1em">
<h1>服务暂时不可用</h1><p>系统正在恢复，您的操作没有被执行。请稍后刷新页面；如需帮助请拨打 12333。</p>
<p lang="en">The service is recovering; nothing was changed. Please reload in a moment;
for help call 12333.</p></body></html>"""


def unavailable(request: Request) -> Response:
    """503 DATABASE_UNAVAILABLE: the database cannot be reached; nothing was applied.
    The API answers problem+json; a page, a short HTML page."""
    seconds = {"retry_after": RETRY_AFTER_SECONDS}
    if not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    ):
        return HTMLResponse(
            _UNAVAILABLE_PAGE,
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
        )
    return problem(
        request,
        503,
        "DATABASE_UNAVAILABLE",
        seconds,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the input back: it may be an ID number or a password.
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"field": ".".join(loc), "type": err.get("type", ""), "msg": err.get("msg", "")})
    return out


def refusal(request: Request, exc: DomainError) -> JSONResponse:
    """The problem+json answer to a DomainError (the app's handler, and the payment
    fast lane, which answers before the app's handlers)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status in (429, 503) and "retry_after" in exc.params:
        headers = {"Retry-After": str(exc.params["retry_after"])}
    return problem(request, exc.status, exc.code, exc.params, exc.extra, headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return refusal(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(request, 422, "VALIDATION_ERROR", extra={"errors": _validation_errors(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        return problem(request, exc.status_code, code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(request, 500, "INTERNAL_ERROR")


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details with a stable `code`.",
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string", "description": "what happened, in the caller's language"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "stable machine-readable code"},
        "detail": {"type": "string", "description": "what to do about it"},
        "errors": {
            "type": "array",
            "description": "validation errors, one per field (the input is never echoed)",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "type": {"type": "string"},
                    "msg": {"type": "string"},
                },
            },
        },
        "blockers": {
            "type": "array",
            "description": "every condition that refused an unbind",
            "items": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "hint": {"type": ["string", "null"]},
                },
            },
        },
    },
    "additionalProperties": True,
}

_DOCUMENTED = {
    "400": "Bad request",
    "401": "Not authenticated, or wrong credentials",
    "403": "Not allowed",
    "404": "Not found (also for ids the caller may not see)",
    "409": "Conflict with the current state",
    "422": "Invalid input",
    "423": "Locked after too many failed verifications",
    "429": "Too many attempts",
    "503": "Busy: the request was not applied; retry after `Retry-After` seconds",
}


def document(app: FastAPI) -> None:
    """Every operation documents its problem+json answers (and no plain-JSON 422)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        ref = {"$ref": "#/components/schemas/Problem"}
        for path_item in spec.get("paths", {}).values():
            for op in path_item.values():
                responses = op.setdefault("responses", {})
                for status, description in _DOCUMENTED.items():
                    entry = responses.setdefault(status, {"description": description})
                    entry["content"] = {PROBLEM: {"schema": ref}}
        schemas = spec["components"]["schemas"]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
