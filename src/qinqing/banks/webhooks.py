"""Webhooks to partner banks (Standard Webhooks), through a database outbox.

Writing: :func:`bank_link_event` and :func:`family_event` add one outbox row
per event and receiving endpoint, in the caller's transaction, so an event
exists exactly when its change committed. A family or unbind event goes to
every bank that has an active bank link with either party; its ``data`` names
that bank's customers by their bank-link ids (opaque) and carries no personal
data in clear.

Delivering: :func:`deliver_webhooks` claims due rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so several workers never claim one row twice) by
pushing their ``next_attempt_at`` a lease ahead and committing, sends each with
its stable ``webhook-id`` and a fresh ``webhook-timestamp`` and v1 signature,
then records the outcome: delivered, retried later with exponential backoff and
jitter, or after ``MAX_ATTEMPTS`` marked failed for an operator (``qinqing
webhooks list --failed`` / ``retry``). The attempt counter fences a late result
of a claim whose lease ran out. A receiver may see an event more than once and
deduplicates by ``webhook-id``.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth.models import ApiClient
from qinqing.banks import rules
from qinqing.banks.access import active_links_of
from qinqing.banks.models import BankLink, EventStatus, WebhookEndpoint, WebhookEvent
from qinqing.family.events import UnbindRef
from qinqing.family.models import FamilyLink
from qinqing.kit.errors import DomainError
from qinqing.kit.locking import claim
from qinqing.runtime import Runtime

log = logging.getLogger("qinqing.webhooks")

SECRET_KIND = "webhook_secret"  # noqa: S105 - a vault field kind, not a secret
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix
TIMEOUT_SECONDS = 5.0
# A claimed row is due again after this if its worker died mid-delivery.
LEASE = timedelta(seconds=120)
USER_AGENT = "Qinqing-Webhooks/1"

EVENT_TYPES = (
    "bank_link.created",
    "bank_link.ended",
    "family_link.activated",
    "family_link.ended",
    "unbind_request.pending_review",
    "unbind_request.decided",
)


# --- endpoints -----------------------------------------------------------------------


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (Standard Webhooks' secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str) -> str:
    """https, or http to a loopback address (a receiver on the same machine); 422 otherwise."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise DomainError("WEBHOOK_URL_INVALID", 422) from None
    if len(url) > 2048 or not host or parts.username or parts.password:
        raise DomainError("WEBHOOK_URL_INVALID", 422)
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and _loopback(host):
        return url
    raise DomainError("WEBHOOK_URL_INVALID", 422)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def set_endpoint(
    session: Session,
    rt: Runtime,
    client: ApiClient,
    url: str,
    *,
    actor: Actor,
    secret: str | None = None,
) -> str:
    """Give a bank client a webhook URL and a new signing secret; the secret is
    returned this once and stored only encrypted (vault kind ``webhook_secret``)."""
    if client.kind != "bank":
        raise DomainError("WEBHOOK_ONLY_FOR_BANKS", 422)
    url = check_url(url)
    secret = secret or new_secret()
    now = rt.clock.now()
    endpoint = session.get(WebhookEndpoint, client.id)
    if endpoint is None:
        endpoint = WebhookEndpoint(client_id=client.id, created_at=now)
        session.add(endpoint)
    endpoint.url = url
    endpoint.secret_cipher = rt.vault.encrypt(SECRET_KIND, secret)
    endpoint.enabled = True
    session.flush()
    record(
        session,
        actor=actor,
        action="webhook.endpoint.set",
        subject_kind="api_client",
        subject_id=client.id,
        at=now,
        details={"scheme": urlsplit(url).scheme},
    )
    return secret


# --- writing events ------------------------------------------------------------------


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _endpoints_of(session: Session, bank_codes: Sequence[str]) -> list[tuple[str, str]]:
    """(client id, bank code) of every enabled endpoint of an enabled client of these banks."""
    if not bank_codes:
        return []
    rows = session.execute(
        select(ApiClient.id, ApiClient.bank_code)
        .join(WebhookEndpoint, WebhookEndpoint.client_id == ApiClient.id)
        .where(
            ApiClient.bank_code.in_(sorted(set(bank_codes))),
            ApiClient.kind == "bank",
            ApiClient.disabled.is_(False),
            WebhookEndpoint.enabled.is_(True),
        )
        .order_by(ApiClient.id)
    ).all()
    return [(cid, code) for cid, code in rows if code]


_sequence = itertools.count()


def new_event_id() -> str:
    """``msg_`` + wall-clock nanoseconds + a process counter + randomness: unique, and
    sorting by it sends one process's events in the order they were written."""
    return f"msg_{time.time_ns():016x}{next(_sequence) % 4096:03x}{secrets.token_hex(6)}"


def _add(
    session: Session,
    *,
    person_id: uuid.UUID,
    client_id: str,
    event_type: str,
    data: dict[str, Any],
    at: datetime,
) -> WebhookEvent:
    body = json.dumps(
        {"type": event_type, "timestamp": _stamp(at), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    event = WebhookEvent(
        person_id=person_id,
        id=new_event_id(),
        client_id=client_id,
        event_type=event_type,
        body=body,
        status=EventStatus.pending.value,
        attempts=0,
        next_attempt_at=at,
        created_at=at,
    )
    session.add(event)
    return event


def bank_link_data(link: BankLink, account_number_masked: str) -> dict[str, Any]:
    return {
        "bank_link_id": str(link.id),
        "bank_code": link.bank_code,
        "account_number_masked": account_number_masked,
        "status": link.status,
        "channel": link.ended_channel or link.created_channel,
        "created_at": _stamp(link.created_at),
        "ended_at": _stamp(link.ended_at) if link.ended_at else None,
    }


def bank_link_event(
    session: Session, link: BankLink, event_type: str, account_number_masked: str, at: datetime
) -> int:
    """``bank_link.created`` / ``bank_link.ended`` to the link's bank; how many rows."""
    data = bank_link_data(link, account_number_masked)
    n = 0
    for client_id, _code in _endpoints_of(session, [link.bank_code]):
        _add(
            session,
            person_id=link.person_id,
            client_id=client_id,
            event_type=event_type,
            data=data,
            at=at,
        )
        n += 1
    return n


def family_event(
    session: Session,
    event_type: str,
    link: FamilyLink,
    at: datetime,
    *,
    request: UnbindRef | None = None,
) -> int:
    """A family-link or unbind event to every bank that has either party as customer.

    Called by the family and unbind services at the points where the parties
    are notified. Costs one indexed look-up when neither party banks with a partner.
    """
    customers: dict[str, list[dict[str, str]]] = {}
    roles = {link.holder_id: "holder", link.member_id: "member"}
    for bl in active_links_of(session, roles):
        customers.setdefault(bl.bank_code, []).append(
            {"bank_link_id": str(bl.id), "role": roles[bl.person_id]}
        )
    if not customers:
        return 0
    base: dict[str, Any] = {
        "link_id": str(link.id),
        "link_status": link.status,
        "relation": link.relation,
        "mutual_aid": link.mutual_aid,
        "region_code": link.region_code,
    }
    if link.ended_at is not None:
        base["ended_channel"] = link.ended_channel
    if request is not None:
        base["unbind_request_id"] = str(request.id)
        base["unbind_request_status"] = request.status
        base["on_behalf_of"] = request.on_behalf_of
        base["channel"] = request.channel
    n = 0
    for client_id, code in _endpoints_of(session, list(customers)):
        mine = sorted(customers[code], key=lambda c: (c["role"], c["bank_link_id"]))
        _add(
            session,
            person_id=link.holder_id,
            client_id=client_id,
            event_type=event_type,
            data={**base, "customers": mine},
            at=at,
        )
        n += 1
    return n


# --- delivering ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Claim:
    person_id: uuid.UUID
    id: str
    client_id: str
    body: str
    attempts: int


@dataclass(frozen=True, slots=True)
class _Result:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and rules.delivered(self.status_code)


def _claim(
    rt: Runtime, now: datetime, limit: int
) -> tuple[list[_Claim], dict[str, tuple[str, str]]]:
    with rt.db.unit_of_work() as session:
        rows = claim(
            session,
            select(WebhookEvent)
            .where(
                WebhookEvent.status == EventStatus.pending.value,
                WebhookEvent.next_attempt_at <= now,
            )
            # Oldest first (ids sort by creation), whatever their retry jitter.
            .order_by(WebhookEvent.id),
            [WebhookEvent.person_id, WebhookEvent.id],
            limit,
        )
        claims = []
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + LEASE
            claims.append(_Claim(row.person_id, row.id, row.client_id, row.body, row.attempts))
        targets: dict[str, tuple[str, str]] = {}
        client_ids = sorted({c.client_id for c in claims})
        if client_ids:
            for ep, disabled in session.execute(
                select(WebhookEndpoint, ApiClient.disabled)
                .join(ApiClient, ApiClient.id == WebhookEndpoint.client_id)
                .where(WebhookEndpoint.client_id.in_(client_ids))
            ).all():
                if ep.enabled and not disabled:
                    targets[ep.client_id] = (
                        ep.url,
                        rt.vault.decrypt(SECRET_KIND, ep.secret_cipher),
                    )
    return claims, targets


def signed_headers(secret: str, msg_id: str, at: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    at = at.astimezone(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def _send(
    http: httpx.Client, claim: _Claim, target: tuple[str, str] | None, now: datetime
) -> _Result:
    if target is None:
        return _Result(None, "endpoint disabled or removed")
    url, secret = target
    headers = {
        **signed_headers(secret, claim.id, now, claim.body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        response = http.post(url, content=claim.body.encode(), headers=headers)
    except httpx.TimeoutException:
        return _Result(None, "timeout")
    except httpx.HTTPError as exc:
        return _Result(None, type(exc).__name__)
    return _Result(
        response.status_code, None if rules.delivered(response.status_code) else "HTTP status"
    )


def _record(
    rt: Runtime, claim: _Claim, result: _Result, now: datetime, jitter: Callable[[], float]
) -> None:
    values: dict[str, Any] = {
        "last_attempt_at": now,
        "last_status_code": result.status_code,
        "last_error": result.error,
    }
    if result.ok:
        values |= {"status": EventStatus.delivered.value, "delivered_at": now}
    elif rules.gives_up(claim.attempts) or result.error == "endpoint disabled or removed":
        values |= {"status": EventStatus.failed.value}
    else:
        values |= {"next_attempt_at": now + rules.retry_delay(claim.attempts, jitter())}
    with rt.db.unit_of_work() as session:
        session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.person_id == claim.person_id,
                WebhookEvent.id == claim.id,
                WebhookEvent.status == EventStatus.pending.value,
                # Fencing: a later claim of the same row (our lease ran out) wins.
                WebhookEvent.attempts == claim.attempts,
            )
            .values(**values)
        )


def _release(rt: Runtime, claims: Sequence[_Claim], now: datetime) -> None:
    """Undo claims never sent: the attempt did not happen, and the row is due now."""
    with rt.db.unit_of_work() as session:
        for claim in claims:
            session.execute(
                update(WebhookEvent)
                .where(
                    WebhookEvent.person_id == claim.person_id,
                    WebhookEvent.id == claim.id,
                    WebhookEvent.status == EventStatus.pending.value,
                    WebhookEvent.attempts == claim.attempts,  # still our claim
                )
                .values(attempts=claim.attempts - 1, next_attempt_at=now)
            )


def deliver_webhooks(
    rt: Runtime,
    now: datetime | None = None,
    limit: int = 100,
    *,
    transport: httpx.BaseTransport | None = None,
    jitter: Callable[[], float] = random.random,
    timeout: float = TIMEOUT_SECONDS,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Send up to ``limit`` due webhook events; how many were delivered (2xx).

    ``now`` comes from the injectable clock (``rt.clock.now()`` when omitted) and
    is the signature's timestamp. Safe to run in several processes at once.
    ``stop`` is asked before each send: once it says yes (the worker got SIGTERM),
    the delivery under way has finished and been recorded, and the claims not
    yet sent are given back, due at once for another worker.
    """
    now = now or rt.clock.now()
    claims, targets = _claim(rt, now, limit)
    if not claims:
        return 0
    delivered = 0
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as http:
        for n, claim in enumerate(claims):
            if stop is not None and stop():
                _release(rt, claims[n:], now)
                break
            result = _send(http, claim, targets.get(claim.client_id), now)
            _record(rt, claim, result, now, jitter)
            if result.ok:
                delivered += 1
            else:
                log.warning(
                    "webhook %s to client %s not delivered (attempt %d): %s",
                    claim.id,
                    claim.client_id,
                    claim.attempts,
                    result.error if result.status_code is None else result.status_code,
                )
    return delivered


# --- operating -----------------------------------------------------------------------


def list_events(
    session: Session, *, failed_only: bool = False, limit: int = 100
) -> list[WebhookEvent]:
    stmt = select(WebhookEvent)
    if failed_only:
        stmt = stmt.where(WebhookEvent.status == EventStatus.failed.value)
    stmt = stmt.order_by(WebhookEvent.created_at.desc(), WebhookEvent.id).limit(limit)
    return list(session.execute(stmt).scalars())


def retry_event(session: Session, rt: Runtime, event_id: str, *, actor: Actor) -> WebhookEvent:
    """Queue a failed event again under the same ``webhook-id`` (never as a new event)."""
    peek = session.execute(
        select(WebhookEvent.person_id).where(WebhookEvent.id == event_id)
    ).scalar_one_or_none()
    if peek is None:
        raise DomainError("NOT_FOUND", 404, kind="webhook_event")
    event = session.execute(
        select(WebhookEvent)
        .where(WebhookEvent.person_id == peek, WebhookEvent.id == event_id)
        .with_for_update(key_share=True)
    ).scalar_one()
    if event.status != EventStatus.failed.value:
        raise DomainError("WEBHOOK_EVENT_NOT_FAILED", 409, event_status=event.status)
    now = rt.clock.now()
    event.status = EventStatus.pending.value
    event.attempts = 0
    event.next_attempt_at = now
    record(
        session,
        actor=actor,
        action="webhook.retry",
        subject_kind="webhook_event",
        subject_id=event.id,
        at=now,
        details={"client_id": event.client_id, "event_type": event.event_type},
    )
    session.flush()
    return event
