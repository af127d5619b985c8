"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from qinqing.audit.models import AuditEntry, AuditHead
from qinqing.auth.models import AccessToken, ApiClient, LoginThrottle, PersonAccount, StaffUser
from qinqing.db import Base
from qinqing.persons.models import Person
from qinqing.regions.models import Region

__all__ = [
    "AccessToken",
    "ApiClient",
    "AuditEntry",
    "AuditHead",
    "Base",
    "LoginThrottle",
    "Person",
    "PersonAccount",
    "Region",
    "StaffUser",
]
