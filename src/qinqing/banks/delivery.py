"""Delivering the webhook outbox (Standard Webhooks).

:func:`deliver_webhooks` claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so several workers never claim one row twice) by pushing their
``next_attempt_at`` a lease ahead and committing, sends each with its stable
``webhook-id`` and a fresh ``webhook-timestamp`` and v1 signature, then records
the outcome: delivered, retried later with exponential backoff and jitter, or
after ``MAX_ATTEMPTS`` marked failed for an operator (``qinqing webhooks list
--failed`` / ``retry``). The attempt counter fences a late result of a claim
whose lease ran out. A receiver may see an event more than once and
deduplicates by ``webhook-id``.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth.models import ApiClient
from qinqing.banks import rules
from qinqing.banks.endpoints import SECRET_KIND
from qinqing.banks.models import EventStatus, WebhookEndpoint, WebhookEvent
from qinqing.kit import metrics, netaddr
from qinqing.kit.clock import as_utc
from qinqing.kit.errors import DomainError
from qinqing.kit.locking import claim
from qinqing.runtime import Runtime

log = logging.getLogger("qinqing.webhooks")

TIMEOUT_SECONDS = 5.0
# A claimed row is due again after this if its worker died mid-delivery.
LEASE = timedelta(seconds=120)
USER_AGENT = "Qinqing-Webhooks/1"


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


NOT_PUBLIC = "the URL's host resolves to a non-public address"


def _send(
    http: httpx.Client,
    claim: _Claim,
    target: tuple[str, str] | None,
    now: datetime,
    *,
    public_only: bool = False,
) -> _Result:
    if target is None:
        return _Result(None, "endpoint disabled or removed")
    url, secret = target
    if public_only:
        # Checked again at each delivery: a name that resolved to a public address
        # when the operator set it may point inside the network now (DNS changes).
        parts = urlsplit(url)
        if parts.hostname is None or not netaddr.resolved_public(parts.hostname, parts.port):
            return _Result(None, NOT_PUBLIC)
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
        outcome = "delivered"
    elif rules.gives_up(claim.attempts) or result.error == "endpoint disabled or removed":
        values |= {"status": EventStatus.failed.value}
        outcome = "failed"
    else:
        values |= {"next_attempt_at": now + rules.retry_delay(claim.attempts, jitter())}
        outcome = "retrying"
    with rt.db.unit_of_work() as session:
        recorded = session.execute(
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
        if getattr(
            recorded, "rowcount", 1
        ):  # not when a later claim of the row fenced this one out
            metrics.on_commit(session, lambda: metrics.webhook_delivery(outcome))


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


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings every pass of this process verifies receivers with: httpx's
    defaults (certifi's roots), loaded once. Loading the roots costs about 20 ms of
    CPU, which a new client per pass paid again every time."""
    return httpx.create_ssl_context()


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
    with httpx.Client(
        timeout=timeout, transport=transport, follow_redirects=False, verify=_tls()
    ) as http:
        for n, claim in enumerate(claims):
            if stop is not None and stop():
                _release(rt, claims[n:], now)
                break
            result = _send(
                http,
                claim,
                targets.get(claim.client_id),
                now,
                public_only=rt.settings.is_production,
            )
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


def waiting(session: Session) -> tuple[int, datetime | None]:
    """Events still to deliver and when the oldest was written: the outbox metrics
    (``qinqing_outbox_depth{outbox="webhooks"}``)."""
    count, oldest = session.execute(
        select(func.count(), func.min(WebhookEvent.created_at)).where(
            WebhookEvent.status == EventStatus.pending.value
        )
    ).one()
    return int(count), as_utc(oldest) if oldest is not None else None


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
