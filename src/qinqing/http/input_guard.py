"""A pure ASGI guard in front of every route: bodies larger than ``MAX_BODY`` are
refused (413) and no input may carry a NUL character (422). File uploads (the
paths the app names in ``uploads``, multipart forms) may be up to
``MAX_UPLOAD`` and carry binary data: their fields are checked by the route.

PostgreSQL cannot store NUL in text and answers with an error, so a NUL that
reached a query would be a server error; no field of this API can legitimately
hold one, so it is refused once, here, for the path, the query and the body
(raw bytes, the JSON escape ``\\u0000`` and the form escape ``%00``).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qinqing.http.problems import problem
from qinqing.http.retry import replay_body

MAX_BODY = 2 * 1024 * 1024
# A 5 MB file and the multipart form around it.
MAX_UPLOAD = 6 * 1024 * 1024
_NUL = re.compile(rb"\x00|\\u0000|%00", re.IGNORECASE)


class InputGuard:
    def __init__(self, app: ASGIApp, uploads: re.Pattern[str] | None = None) -> None:
        self.app = app
        self.uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if _NUL.search(raw_path) or _NUL.search(scope.get("query_string", b"")):
            await self._refuse(scope, send, 422, "VALIDATION_ERROR", "query")
            return
        upload = self.uploads is not None and bool(self.uploads.fullmatch(scope["path"]))
        limit = MAX_UPLOAD if upload else MAX_BODY
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, send, 413, "PAYLOAD_TOO_LARGE", None)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if not upload and _NUL.search(body):
            await self._refuse(scope, send, 422, "VALIDATION_ERROR", "body")
            return
        await self.app(scope, replay_body(body, receive), send)

    async def _refuse(
        self, scope: Scope, send: Send, status: int, code: str, where: str | None
    ) -> None:
        extra: dict[str, Any] | None = None
        if where:
            extra = {
                "errors": [
                    {
                        "field": where,
                        "type": "nul_character",
                        "msg": "must not contain NUL characters",
                    }
                ]
            }
        response = problem(Request(scope), status, code, extra=extra)

        async def no_body() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        await response(scope, no_body, send)
