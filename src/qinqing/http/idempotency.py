"""Idempotent writes by ``Idempotency-Key`` (docs/guide.md §5), generic for every write route.

Stripe's model (brandur.org/idempotency-keys): the first answer to a write is
kept; a retry with the same key and the same request replays it; the same key
with another request is ``409 IDEMPOTENCY_MISMATCH``.

How it works, all inside the request's own transaction (the unit of work):

1. ``reserve`` inserts ``(caller, key)`` with ``INSERT ... ON CONFLICT DO
   NOTHING`` and then reads it back with ``SELECT ... FOR UPDATE``. A
   concurrent duplicate therefore waits on the first request's uncommitted row
   and, once that commits, finds its stored answer and replays it. (SQLite
   serializes writers with ``BEGIN IMMEDIATE``, which gives the same order.)
2. The route does its work in the same transaction; ``complete`` stores the
   successful answer (status and JSON body) on the reserved row, so the change
   and its remembered answer commit together or not at all.
3. A refused request (any :class:`~qinqing.kit.errors.DomainError`) is **not**
   stored: its transaction rolls back, reservation included, and a retry is
   evaluated afresh. That matters for an unbind refused for, say, unsettled
   payments: once they are settled the same retry must be able to succeed. A
   refusal that itself changes state (``commit=True``, a counted wrong payment
   password) commits that change but deletes the reservation first (``release``).

Keys are per caller (``"person:<id>"``, ``"staff:<id>"``, ``"client:<id>"``): two
callers never see each other's answers. The request is identified by a keyed
HMAC (the vault's blind-index key) over method, path and the canonical JSON body,
so a stored hash of a body holding a six-digit payment password cannot be
brute-forced from a database dump.

The stored answer may hold personal data (a reviewer's staff view shows full
ID numbers), so it is kept only sealed: AES-GCM under the vault's
stored-answers sub-key, bound to the caller and key, as
``{"sealed": "<base64>"}``. Keys are purged after 24 hours by the worker
(:func:`purge_idempotency_keys`); a retry after that is a new request.

Routes use :func:`run_idempotent`; the lower-level functions are for callers
that are not HTTP routes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.http.idempotency_models import IdempotencyKey
from qinqing.identity.vault import Vault
from qinqing.kit.db import insert_ignore
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 128
RETENTION = timedelta(hours=24)
# A reserved row's status until the answer is stored (never visible to others:
# reservation and answer commit together).
_IN_PROGRESS = 0


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    body: Any


def caller_of(principal: Principal) -> str:
    return f"{principal.kind}:{principal.id}"


def check_key(raw: str | None) -> str | None:
    """The key, if any; 422 IDEMPOTENCY_KEY_INVALID unless 1..128 printable ASCII."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in raw):
        raise DomainError("IDEMPOTENCY_KEY_INVALID", 422, max_length=MAX_KEY_LENGTH)
    return raw


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description=(
                "Makes the write safe to retry: the same key and body replay the first "
                "answer (with `Idempotent-Replayed: true`); the same key with another body "
                "is 409 IDEMPOTENCY_MISMATCH. 1 to 128 printable ASCII characters; keys "
                "are kept for 24 hours."
            ),
        ),
    ] = None,
) -> str | None:
    """FastAPI dependency: the validated ``Idempotency-Key`` header (async: it does
    no I/O, so it runs in the event loop, not in a worker thread)."""
    return check_key(key)


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]


def canonical_json(body: Any) -> str:
    return json.dumps(
        jsonable_encoder(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def request_hash(vault: Vault, method: str, path: str, body: Any) -> str:
    """Keyed digest (64 hex) of method, path and the canonical JSON body."""
    return vault.index("idempotency", f"{method.upper()}\n{path}\n{canonical_json(body)}")


def seal_context(caller: str, key: str) -> str:
    return f"idempotency\x00{caller}\x00{key}"


def seal_answer(vault: Vault, caller: str, key: str, body: Any) -> dict[str, object]:
    """The stored form of an answer: sealed JSON, nothing in clear."""
    plain = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return {"sealed": base64.b64encode(vault.seal(seal_context(caller, key), plain)).decode()}


def open_answer(vault: Vault, caller: str, key: str, stored: dict[str, object]) -> Any:
    sealed = stored.get("sealed")
    if not isinstance(sealed, str):
        return stored.get("body")  # written before answers were sealed
    return json.loads(vault.unseal(seal_context(caller, key), base64.b64decode(sealed)))


def reserve(
    session: Session,
    *,
    vault: Vault,
    caller: str,
    key: str,
    operation: str,
    request_hash: str,
    now: datetime,
) -> StoredAnswer | None:
    """Take the key for this request, or return the answer to replay.

    None: the key is reserved in the caller's transaction, go ahead and then
    :func:`complete` it. A :class:`StoredAnswer`: replay it. Raises 409
    IDEMPOTENCY_MISMATCH when the key was used for a different request.
    """
    for _ in range(3):
        insert_ignore(
            session,
            IdempotencyKey,
            {
                "caller": caller,
                "key": key,
                "operation": operation[:160],
                "request_hash": request_hash,
                "status_code": _IN_PROGRESS,
                "response": {},
                "created_at": now,
            },
        )
        row = session.execute(
            select(IdempotencyKey)
            .where(IdempotencyKey.caller == caller, IdempotencyKey.key == key)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if row is None:
            # The holder of the key released it (its request was refused) between
            # our insert and our read: try again.
            continue
        if row.request_hash != request_hash:
            raise DomainError("IDEMPOTENCY_MISMATCH", 409)
        if row.status_code == _IN_PROGRESS:
            return None  # ours: reserved by the insert above
        return StoredAnswer(row.status_code, open_answer(vault, caller, key, row.response))
    raise DomainError("IDEMPOTENCY_MISMATCH", 409)  # pragma: no cover - needs three races


def complete(
    session: Session, *, vault: Vault, caller: str, key: str, status_code: int, body: Any
) -> None:
    """Store the successful answer, sealed, on the reserved key (same transaction as
    the change)."""
    row = session.execute(
        select(IdempotencyKey).where(IdempotencyKey.caller == caller, IdempotencyKey.key == key)
    ).scalar_one()
    row.status_code = status_code
    row.response = seal_answer(vault, caller, key, jsonable_encoder(body))
    session.flush()


def release(session: Session, *, caller: str, key: str) -> None:
    """Give the key back (a refused request that still commits a state change)."""
    session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.caller == caller, IdempotencyKey.key == key)
    )


def run_idempotent(
    session: Session,
    *,
    vault: Vault,
    principal: Principal,
    key: str | None,
    method: str,
    path: str,
    body: Any,
    now: datetime,
    handler: Callable[[], tuple[int, Any]],
) -> JSONResponse:
    """Run a write route's ``handler`` (returning status and JSON-able body) once per key.

    Without a key the handler simply runs. With one, the answer is reserved,
    replayed or refused as the module docstring describes.
    """
    if key is None:
        status, answer = handler()
        return JSONResponse(jsonable_encoder(answer), status_code=status)
    caller = caller_of(principal)
    digest = request_hash(vault, method, path, body)
    stored = reserve(
        session,
        vault=vault,
        caller=caller,
        key=key,
        operation=f"{method.upper()} {path}",
        request_hash=digest,
        now=now,
    )
    if stored is not None:
        return JSONResponse(
            stored.body, status_code=stored.status_code, headers={REPLAYED_HEADER: "true"}
        )
    try:
        status, answer = handler()
    except DomainError as exc:
        if exc.commit:
            release(session, caller=caller, key=key)
        raise
    encoded = jsonable_encoder(answer)
    complete(session, vault=vault, caller=caller, key=key, status_code=status, body=encoded)
    return JSONResponse(encoded, status_code=status)


def run_for_request(
    request: Request,
    session: Session,
    rt: Runtime,
    principal: Principal,
    key: str | None,
    body: Any,
    handler: Callable[[], tuple[int, Any]],
) -> JSONResponse:
    """:func:`run_idempotent` for a route: method and path from the request,
    vault and clock from the runtime."""
    return run_idempotent(
        session,
        vault=rt.vault,
        principal=principal,
        key=key,
        method=request.method,
        path=request.url.path,
        body=body,
        now=rt.clock.now(),
        handler=handler,
    )


def purge_idempotency_keys(session: Session, now: datetime, limit: int = 5000) -> int:
    """Delete up to ``limit`` keys older than ``RETENTION``; how many (the worker's job)."""

    old = (
        select(IdempotencyKey.caller, IdempotencyKey.key)
        .where(IdempotencyKey.created_at < now - RETENTION)
        .order_by(IdempotencyKey.created_at)
        .limit(limit)
    )
    rows = session.execute(old).all()
    if not rows:
        return 0
    session.execute(
        delete(IdempotencyKey).where(
            tuple_(IdempotencyKey.caller, IdempotencyKey.key).in_([tuple(r) for r in rows])
        )
    )
    return len(rows)


def seal_legacy_answers(session: Session, vault: Vault) -> int:
    """Once, when a database first gets its key check: seal answers stored in clear."""
    count = 0
    for row in session.execute(select(IdempotencyKey)).scalars():
        if "body" in row.response:
            row.response = seal_answer(vault, row.caller, row.key, row.response["body"])
            count += 1
    session.flush()
    return count
