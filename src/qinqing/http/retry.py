"""Run a request again, whole, when its transaction lost a conflict.

A request's unit of work is its route: the session dependency, the caller's
look-up, every read and write, the commit (see ``qinqing.http.deps``). When any of
it fails with a conflict that a fresh transaction may not meet again — a
PostgreSQL deadlock (40P01) or serialization failure (40001), SQLite busy —
the transaction has already been rolled back, nothing of it is left, and this
middleware replays the same request (same body) from the start, reads
included, at most :func:`qinqing.kit.db.attempts_for` times in all (4; SQLite busy,
which has already waited for the write lock, 2) with a short jittered pause. After the last attempt the answer is ``503`` problem+json ``RETRY_LATER``
with ``Retry-After``, never a 500. A database that cannot be reached at all
(refused, shutting down, a pool that waited in vain: ``kit.db.unavailable_of``)
is answered at once with ``503`` ``DATABASE_UNAVAILABLE`` and ``Retry-After``,
logged as a warning without a traceback. A response that has already started is
never replayed.

A request must therefore have no effect outside the database that a second run
would repeat; the ones that talk to the outside (a face check, an SMS) do so
idempotently or after the commit.
"""

from __future__ import annotations

import logging

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qinqing.http.problems import retry_later, unavailable
from qinqing.kit import db

log = logging.getLogger("qinqing.db")


class RetryConflicts:
    """Pure ASGI middleware; sits inside the request-id middleware, so every
    attempt carries the same request id and a 503 is logged like any answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client went away before sending its request
        rt = scope["app"].state.runtime
        what = f"{scope['method']} {scope['path']}"
        attempt = 0
        while True:
            attempt += 1
            started = False

            async def tracking_send(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                await send(message)

            try:
                await self.app(scope, replay_body(body, receive), tracking_send)
                return
            except Exception as exc:
                if started:
                    raise
                conflict = db.conflict_of(exc)
                if conflict is not None and rt.db.note_conflict(conflict, attempt, what):
                    await anyio.sleep(db.backoff(attempt))
                    continue
                if db.unavailable_of(exc):
                    # No traceback: an outage is an operator's alarm, not a bug.
                    log.warning("database unavailable on %s: %s", what, type(exc).__name__)
                    response = unavailable(Request(scope))
                    await response(scope, replay_body(b"", receive), send)
                    return
                if conflict is None:
                    raise
                break
        response = retry_later(Request(scope))
        await response(scope, replay_body(b"", receive), send)


async def read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
