"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from qinqing.audit.models import AuditEntry, AuditHead
from qinqing.auth.models import (
    AccessToken,
    ApiClient,
    LoginThrottle,
    PersonAccount,
    RegistrationCode,
    StaffUser,
)
from qinqing.db import Base
from qinqing.family.models import FamilyLink
from qinqing.idempotency_models import IdempotencyKey
from qinqing.ledger.models import (
    Contribution,
    LedgerAccount,
    LedgerEntry,
    LedgerTransfer,
    MonthClosing,
    Payment,
)
from qinqing.notify.models import Notification
from qinqing.persons.models import Person
from qinqing.regions.models import Region
from qinqing.unbind.models import UnbindRequest

__all__ = [
    "AccessToken",
    "ApiClient",
    "AuditEntry",
    "AuditHead",
    "Base",
    "Contribution",
    "FamilyLink",
    "IdempotencyKey",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransfer",
    "LoginThrottle",
    "MonthClosing",
    "Notification",
    "Payment",
    "Person",
    "PersonAccount",
    "Region",
    "RegistrationCode",
    "StaffUser",
    "UnbindRequest",
]
