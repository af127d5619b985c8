"""Who is calling: a person, a staff member or an API client, from a bearer token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from qinqing.audit.service import Actor
from qinqing.auth.models import AccessToken, ApiClient, PersonAccount, StaffUser
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime

STAFF_CHANNEL = {"clerk": "counter", "reviewer": "review", "admin": "admin"}
CLIENT_SCOPES = {
    "bank": "bank-links family",
    "institution": "payments",
    "collector": "contributions",
}

_bearer = HTTPBearer(
    auto_error=False, description="An access token from /auth/login or /auth/token"
)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # person | staff | client
    id: str
    channel: str
    token_hash: str
    person_id: uuid.UUID | None = None
    role: str | None = None
    region_code: str | None = None
    scopes: frozenset[str] = frozenset()
    bank_code: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.kind, self.id, self.channel)


def unauthenticated() -> DomainError:
    return DomainError("UNAUTHENTICATED", 401)


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def bearer_token(creds: HTTPAuthorizationCredentials | None) -> str:
    """The bearer token of the request; UNAUTHENTICATED when there is none."""
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise unauthenticated()
    return creds.credentials


def current_principal(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    creds: BearerDep,
) -> Principal:
    return principal_from_token(session, rt, bearer_token(creds))


def principal_from_token(session: Session, rt: Runtime, token: str) -> Principal:
    """Who holds this opaque access token (the API's bearer, the web app's session
    cookie); UNAUTHENTICATED when it is unknown, revoked or expired."""
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


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_person(p: PrincipalDep) -> Principal:
    if p.kind != "person":
        raise DomainError("FORBIDDEN", 403)
    return p


def require_staff(*roles: str) -> object:
    def dep(p: PrincipalDep) -> Principal:
        if p.kind != "staff" or (roles and p.role not in roles):
            raise DomainError("FORBIDDEN", 403)
        return p

    return Depends(dep)


def check_scope(p: Principal, scope: str) -> Principal:
    """An API client granted ``scope``; 403 INSUFFICIENT_SCOPE for anyone else."""
    if p.kind != "client" or scope not in p.scopes:
        raise DomainError("INSUFFICIENT_SCOPE", 403, scope=scope)
    return p


def require_scope(scope: str) -> object:
    def dep(p: PrincipalDep) -> Principal:
        return check_scope(p, scope)

    return Depends(dep)


PersonDep = Annotated[Principal, Depends(require_person)]
