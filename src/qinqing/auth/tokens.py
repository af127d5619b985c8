"""Access tokens: opaque bearer strings, stored only as their SHA-256, and who
holds one (the API's bearer, the web app's session cookie)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth.models import AccessToken, ApiClient, PersonAccount, StaffUser
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


SEEN_EVERY = timedelta(minutes=5)


def unauthenticated() -> DomainError:
    return DomainError("UNAUTHENTICATED", 401)


def principal_from_token(session: Session, rt: Runtime, token: str) -> Principal:
    """Who holds this opaque access token; UNAUTHENTICATED when it is unknown,
    revoked or expired, or its account is gone or disabled."""
    digest = token_digest(token)
    # One round trip for the token and, for API clients (the busy callers), the client.
    row = session.execute(
        select(AccessToken, ApiClient)
        .outerjoin(
            ApiClient,
            and_(AccessToken.subject_kind == "client", ApiClient.id == AccessToken.subject_id),
        )
        .where(AccessToken.token_hash == digest)
    ).one_or_none()
    tok, client = (row[0], row[1]) if row is not None else (None, None)
    now = rt.clock.now()
    if tok is None or tok.revoked_at is not None or tok.expires_at <= now:
        raise unauthenticated()
    if tok.subject_kind == "person":
        # The token names the person: the account is read on the person's shard.
        found = session.execute(
            select(PersonAccount.person_id).where(
                PersonAccount.person_id == tok.person_id,
                PersonAccount.id == uuid.UUID(tok.subject_id),
            )
        ).scalar_one_or_none()
        if found is None:
            raise unauthenticated()
        # The session list's "last used": a write at most every few minutes.
        if tok.last_seen_at is None or now - tok.last_seen_at >= SEEN_EVERY:
            tok.last_seen_at = now
        return Principal("person", tok.subject_id, tok.channel, digest, person_id=found)
    if tok.subject_kind == "staff":
        staff = session.get(StaffUser, uuid.UUID(tok.subject_id))
        if staff is None or staff.disabled:
            raise unauthenticated()
        return Principal(
            "staff",
            tok.subject_id,
            tok.channel,
            digest,
            role=staff.role,
            region_code=staff.region_code,
        )
    if client is None or client.disabled:
        raise unauthenticated()
    return Principal(
        "client",
        client.id,
        client.kind,
        digest,
        region_code=client.region_code,
        scopes=frozenset(tok.scopes.split()),
        bank_code=client.bank_code,
        role=client.kind,
    )


def revoke_all(
    session: Session, kind: str, subject_id: str, now: datetime, *, keep: str | None = None
) -> int:
    """End every live token of one subject (a person's account, a staff member, a
    client) but ``keep`` (a token digest); how many ended."""
    conditions = [
        AccessToken.subject_kind == kind,
        AccessToken.subject_id == subject_id,
        AccessToken.revoked_at.is_(None),
    ]
    if keep is not None:
        conditions.append(AccessToken.token_hash != keep)
    ended = session.execute(update(AccessToken).where(*conditions).values(revoked_at=now))
    return int(ended.rowcount or 0)  # type: ignore[attr-defined]
