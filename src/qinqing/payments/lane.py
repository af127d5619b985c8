"""The payment fast lane: an institution's single authorize, settle and void answered
in pure ASGI, before the framework's routing, dependency solving and exception
layers — which cost more CPU per request than the payment itself.

It takes a request only when it is the common case, and then answers exactly
as the route would (the same fast path call, body and headers); anything else
is handed on, untouched, to the app, whose route gives its own answer:

- the fast path is on (PostgreSQL, not Citus);
- ``POST`` to one of the three paths, with a JSON body that validates as the
  route's model, and a valid ``Idempotency-Key`` if any;
- the bearer token's principal is cached (seen in the last seconds as an
  institution with scope ``payments``) — the SQL re-reads the token row anyway;
- ID numbers (not a voucher) that parse.

It sits inside the request-id, input-guard and conflict-retry middleware, so
its answers carry the same headers and logs and a deadlock is retried as the
route's would be.
"""

from __future__ import annotations

import json
import re

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from qinqing.auth.tokens import token_digest
from qinqing.http.idempotency import check_key
from qinqing.http.problems import refusal
from qinqing.http.retry import read_body, replay_body
from qinqing.kit import metrics
from qinqing.kit.errors import DomainError
from qinqing.payments.api import fast_authorize, fast_resolve, reply_response
from qinqing.payments.fast import FastPath, Reply
from qinqing.payments.schemas import AuthorizeIn, SettleIn

_AUTHORIZE = "/api/v1/payments/authorize"
_RESOLVE = re.compile(r"^/api/v1/payments/([^/]+)/(settle|void)$")
# The routes' templates, for the metrics (the lane answers before routing).
_TEMPLATE = {
    "settle": "/api/v1/payments/{payment_id}/settle",
    "void": "/api/v1/payments/{payment_id}/void",
}


class PaymentLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast: FastPath | None = None
        if scope["type"] == "http" and scope["method"] == "POST":
            fast = getattr(scope["app"].state, "fast_payments", None)
        path = scope.get("path", "")
        if fast is None or not (path == _AUTHORIZE or _RESOLVE.match(path)):
            await self.app(scope, receive, send)
            return
        resolve = _RESOLVE.match(path)
        scope[metrics.ROUTE_KEY] = _TEMPLATE[resolve.group(2)] if resolve else _AUTHORIZE
        body = await read_body(receive)
        if body is None:
            return  # the client went away
        request = Request(scope)
        try:
            reply = await self._take(fast, request, path, body)
        except DomainError as exc:
            await refusal(request, exc)(scope, receive, send)
            return
        if reply is None:
            await self.app(scope, replay_body(body, receive), send)
            return
        await reply_response(reply)(scope, receive, send)

    async def _take(self, fast: FastPath, request: Request, path: str, raw: bytes) -> Reply | None:
        """The answer, or None to hand the request to the app."""
        headers = request.headers
        # Read as the framework's bearer scheme reads it.
        scheme, token = get_authorization_scheme_param(headers.get("authorization"))
        if scheme.lower() != "bearer" or not token:
            return None
        principal = fast.principals.get(token_digest(token))
        if principal is None:
            return None
        try:
            key = check_key(headers.get("idempotency-key"))
        except DomainError:
            return None
        url_path = request.url.path
        resolve = _RESOLVE.match(path)
        if resolve is not None and resolve.group(2) == "void":  # no body to read
            return await fast_resolve(fast, principal, resolve.group(1), None, key, url_path)
        if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return None
        if resolve is not None:
            settle = _parse(SettleIn, raw)
            if not isinstance(settle, SettleIn):
                return None
            return await fast_resolve(fast, principal, resolve.group(1), settle, key, url_path)
        parsed = _parse(AuthorizeIn, raw)
        if not isinstance(parsed, AuthorizeIn):
            return None
        return await fast_authorize(fast, principal, parsed, key, url_path)


def _parse(model: type[BaseModel], raw: bytes) -> BaseModel | None:
    """The body as the route would read it (JSON, then the model), or None."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        # Not JSON, or nested deeper than the parser goes ('[' * 50000): the app's
        # route reads it again and answers its own 4xx.
        return None
    if not isinstance(data, dict):
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None
