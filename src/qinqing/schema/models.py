"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from qinqing.audit.models import AuditEntry, AuditHead
from qinqing.auth.models import (
    AccessToken,
    ApiClient,
    IdDocumentFailures,
    LoginThrottle,
    OneTimeCode,
    PersonAccount,
    RegistrationCode,
    StaffUser,
)
from qinqing.banks.models import BankAccountIndex, BankLink, WebhookEndpoint, WebhookEvent
from qinqing.contributions.models import Contribution, MonthClosing
from qinqing.family.models import FamilyLink, LinkProof
from qinqing.http.idempotency_models import IdempotencyKey
from qinqing.identity.keys import VaultKey
from qinqing.kit.db import Base
from qinqing.ledger.models import LedgerAccount, LedgerEntry, LedgerTransfer
from qinqing.notify.models import Notification
from qinqing.payments.models import Payment
from qinqing.persons.models import Person, PersonGuardian
from qinqing.regions.models import Region
from qinqing.resident.models import ResidentContribution, ResidentCoverYear
from qinqing.unbind.models import UnbindRequest
from qinqing.vouchers.models import Voucher, VoucherToken

__all__ = [
    "AccessToken",
    "ApiClient",
    "AuditEntry",
    "AuditHead",
    "BankAccountIndex",
    "BankLink",
    "Base",
    "Contribution",
    "FamilyLink",
    "IdDocumentFailures",
    "IdempotencyKey",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransfer",
    "LinkProof",
    "LoginThrottle",
    "MonthClosing",
    "Notification",
    "OneTimeCode",
    "Payment",
    "Person",
    "PersonAccount",
    "PersonGuardian",
    "Region",
    "RegistrationCode",
    "ResidentContribution",
    "ResidentCoverYear",
    "StaffUser",
    "UnbindRequest",
    "VaultKey",
    "Voucher",
    "VoucherToken",
    "WebhookEndpoint",
    "WebhookEvent",
]
