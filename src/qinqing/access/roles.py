"""The one set of role and region checks (docs/guide.md §2). The API's dependencies,
the web pages and the services all call these; none writes its own.

Each ``require_*`` returns what the caller acts with (a person's id, a staff
member's region) or raises 403 ``FORBIDDEN`` (``INSUFFICIENT_SCOPE`` for a
client's scope), whether or not the thing asked for exists."""

from __future__ import annotations

import uuid

from qinqing.access.principal import Principal
from qinqing.kit.errors import DomainError, forbidden

STAFF_ROLES = ("clerk", "reviewer", "admin")


def is_person(p: Principal) -> bool:
    return p.kind == "person" and p.person_id is not None


def is_staff(p: Principal, *roles: str) -> bool:
    """Staff with one of ``roles`` (any role when none is named)."""
    return p.kind == "staff" and (not roles or p.role in roles)


def is_bank_client(p: Principal) -> bool:
    """A partner bank's API client (it acts only for its own customers)."""
    return p.kind == "client" and p.role == "bank" and bool(p.bank_code)


def require_person(p: Principal) -> uuid.UUID:
    """The logged-in insured person's id."""
    if not is_person(p):
        raise forbidden()
    assert p.person_id is not None
    return p.person_id


def require_staff(p: Principal, *roles: str) -> Principal:
    """Staff with one of ``roles``, of whichever region."""
    if not is_staff(p, *roles):
        raise forbidden()
    return p


def require_regional_staff(p: Principal, role: str) -> str:
    """Staff of ``role`` bound to a region (a clerk, a reviewer): that region."""
    if not is_staff(p, role) or not p.region_code:
        raise forbidden()
    return p.region_code


def require_clerk(p: Principal) -> str:
    """A counter clerk's region."""
    return require_regional_staff(p, "clerk")


def require_reviewer(p: Principal) -> str:
    """A reviewer's region."""
    return require_regional_staff(p, "reviewer")


def staff_of_region(p: Principal, region_code: str) -> bool:
    """Staff whose region is ``region_code`` (they see that region's records)."""
    return p.kind == "staff" and p.region_code == region_code


def check_scope(p: Principal, scope: str) -> Principal:
    """An API client granted ``scope``; 403 INSUFFICIENT_SCOPE for anyone else."""
    if p.kind != "client" or scope not in p.scopes:
        raise DomainError("INSUFFICIENT_SCOPE", 403, scope=scope)
    return p
