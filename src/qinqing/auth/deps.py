"""The API's FastAPI dependencies for the caller: the bearer token becomes a
``Principal`` (``auth.tokens``), checked with ``access.roles``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qinqing.access import roles
from qinqing.access.principal import Principal
from qinqing.auth.tokens import principal_from_token, unauthenticated
from qinqing.http.deps import RuntimeDep, SessionDep

_bearer = HTTPBearer(
    auto_error=False, description="An access token from /auth/login or /auth/token"
)

BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def bearer_token(creds: HTTPAuthorizationCredentials | None) -> str:
    """The bearer token of the request; UNAUTHENTICATED when there is none."""
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise unauthenticated()
    return creds.credentials


def current_principal(session: SessionDep, rt: RuntimeDep, creds: BearerDep) -> Principal:
    return principal_from_token(session, rt, bearer_token(creds))


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def _person(p: PrincipalDep) -> Principal:
    roles.require_person(p)
    return p


PersonDep = Annotated[Principal, Depends(_person)]


def staff_dep(*wanted: str) -> object:
    """A dependency: staff with one of these roles (``access.roles.require_staff``)."""

    def dep(p: PrincipalDep) -> Principal:
        return roles.require_staff(p, *wanted)

    return Depends(dep)


def scope_dep(scope: str) -> object:
    """A dependency: an API client granted ``scope`` (``access.roles.check_scope``)."""

    def dep(p: PrincipalDep) -> Principal:
        return roles.check_scope(p, scope)

    return Depends(dep)
