"""The operations an institution sends (authorize, settle, void) and one outcome each."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from qinqing.kit.errors import DomainError

MAX_BATCH = 1000
STATUS_OF = {
    "AMOUNT_INVALID": 422,
    "NO_MUTUAL_AID_LINK": 409,
    "HOLDER_NOT_EMPLOYEE": 409,
    "PAYER_NOT_ACTIVE": 409,
    "YEARLY_LIMIT_EXCEEDED": 409,
    "INSUFFICIENT_BALANCE": 409,
    "QUOTA_INSUFFICIENT": 409,
    "PAYMENT_ALREADY_RESOLVED": 409,
    "PAYMENT_EXPIRED": 409,
    "SETTLE_EXCEEDS_HOLD": 422,
    "PERSON_NOT_FOUND": 404,
    "PAYMENT_NOT_FOUND": 404,
    "PAYMENT_REFERENCE_EXISTS": 409,
    "MUTUAL_AID_UNAVAILABLE": 409,
    "AUTHORIZE_RATE_LIMITED": 429,
}


# --- operations and outcomes -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authorize:
    holder_id_number: str
    member_id_number: str
    amount_fen: int
    reference: str
    # The holder showed the institution the member's e-voucher for this payment (pay by
    # voucher): the real refusal is told, and nothing is counted as a probe.
    by_voucher: bool = False


@dataclass(frozen=True, slots=True)
class Settle:
    payment_id: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Void:
    payment_id: str


Op = Authorize | Settle | Void


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    code: str | None = None
    payment_id: uuid.UUID | None = None
    status: str | None = None
    amount_fen: int | None = None
    settled_fen: int | None = None
    released_fen: int = 0
    expires_at: datetime | None = None
    # MUTUAL_AID_UNAVAILABLE: the real refusal behind it. For the audit log only —
    # never part of an answer.
    detail: str | None = None
    # AUTHORIZE_RATE_LIMITED: seconds until the client's window is over.
    retry_after: int | None = None

    def raise_if_refused(self, *, commit: bool) -> Outcome:
        if not self.ok:
            assert self.code is not None
            status = STATUS_OF.get(self.code, 409)
            # commit: a hold found overdue while refusing is released for good, and a
            # probe is counted.
            if self.retry_after is not None:
                raise DomainError(self.code, status, commit=commit, retry_after=self.retry_after)
            raise DomainError(self.code, status, commit=commit)
        return self


def refused(code: str, *, detail: str | None = None, retry_after: int | None = None) -> Outcome:
    return Outcome(ok=False, code=code, detail=detail, retry_after=retry_after)
