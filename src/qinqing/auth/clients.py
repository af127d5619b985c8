"""Operators' API-client management: list, disable, rotate a secret (``qinqing
clients …``). A disabled client or a rotated secret ends the client's tokens at
once, so a leaked secret or token stops working when the operator acts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth.models import ApiClient
from qinqing.auth.passwords import Passwords
from qinqing.auth.tokens import revoke_all
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ClientRow:
    id: str
    name: str
    kind: str
    region_code: str
    bank_code: str | None
    disabled: bool
    created_at: datetime


def list_clients(session: Session) -> list[ClientRow]:
    rows = session.execute(select(ApiClient).order_by(ApiClient.created_at, ApiClient.id))
    return [
        ClientRow(c.id, c.name, c.kind, c.region_code, c.bank_code, c.disabled, c.created_at)
        for c in rows.scalars()
    ]


def _client(session: Session, client_id: str) -> ApiClient:
    client = (
        session.execute(select(ApiClient).where(ApiClient.id == client_id).with_for_update())
        .scalars()
        .one_or_none()
        if len(client_id) <= 40
        else None
    )
    if client is None:
        raise DomainError("CLIENT_NOT_FOUND", 404)
    return client


def disable_client(session: Session, rt: Runtime, client_id: str, *, actor: Actor) -> int:
    """Disable the client and end its tokens; the number of tokens ended."""
    client, now = _client(session, client_id), rt.clock.now()
    client.disabled = True
    ended = revoke_all(session, "client", client.id, now)
    record(
        session,
        actor=actor,
        action="client.disable",
        subject_kind="api_client",
        subject_id=client.id,
        at=now,
        details={"tokens_ended": ended},
    )
    return ended


def rotate_secret(
    session: Session, rt: Runtime, client_id: str, hasher: Passwords, *, actor: Actor
) -> str:
    """A new secret, returned once and stored hashed; the old one and every token
    issued with it stop working now. A disabled client stays disabled."""
    client, now = _client(session, client_id), rt.clock.now()
    secret = secrets.token_urlsafe(32)
    client.secret_hash = hasher.hash(secret)
    ended = revoke_all(session, "client", client.id, now)
    record(
        session,
        actor=actor,
        action="client.rotate_secret",
        subject_kind="api_client",
        subject_id=client.id,
        at=now,
        details={"tokens_ended": ended},
    )
    return secret
