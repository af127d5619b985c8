"""Webhook events written to the outbox, in the caller's transaction, so an event
exists exactly when its change committed: ``bank_link.*`` to the link's bank, and
each family or unbind event (``banks.subscribers``) to every bank that has either
party as customer, naming its customers by their bank-link ids (opaque) and
carrying no personal data in clear."""

from __future__ import annotations

import itertools
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.auth.models import ApiClient
from qinqing.banks.access import active_links_of
from qinqing.banks.models import BankLink, EventStatus, WebhookEndpoint, WebhookEvent
from qinqing.family.events import UnbindRef
from qinqing.family.models import FamilyLink

# Every type the outbox writes, as docs/banks.md lists them for the banks.
EVENT_TYPES = (
    "bank_link.created",
    "bank_link.ended",
    "family_link.activated",
    "family_link.ended",
    "unbind_request.pending_review",
    "unbind_request.decided",
)


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
