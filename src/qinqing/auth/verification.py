"""A person's own verification (docs/guide.md §3.3 "Verification"): payment password or face.

Used wherever a person must prove it is them: consenting to a link, unbinding.
Face checks go through a provider interface; the ``simulated`` provider exists
for demo and tests only and the runtime refuses it in production.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.auth.models import PersonAccount
from qinqing.auth.service import verify_payment_password
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime


class PaymentPasswordVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["payment_password"]
    payment_password: str = Field(min_length=1, max_length=16)


class FaceVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["face"]
    face_token: str = Field(min_length=1, max_length=512)


Verification = Annotated[
    PaymentPasswordVerification | FaceVerification, Field(discriminator="method")
]


class FaceProvider(Protocol):
    name: str

    def verify(self, person_id: uuid.UUID, face_token: str) -> bool: ...


class SimulatedFaceProvider:
    """Demo/test only: a token ``sim-ok:<person id>`` passes for that person."""

    name = "simulated"

    def verify(self, person_id: uuid.UUID, face_token: str) -> bool:
        return hmac.compare_digest(face_token, f"sim-ok:{person_id}")


def simulated_face_token(person_id: uuid.UUID) -> str:
    return f"sim-ok:{person_id}"


FACE_PROVIDERS: dict[str, type[SimulatedFaceProvider]] = {"simulated": SimulatedFaceProvider}


def face_provider(rt: Runtime) -> FaceProvider | None:
    name = rt.settings.face_provider
    if name == "simulated" and rt.settings.is_production:
        # The runtime refuses this at start; never trust it even if reached.
        return None
    factory = FACE_PROVIDERS.get(name)
    return factory() if factory else None


def account_of(session: Session, person_id: uuid.UUID, *, lock: bool) -> PersonAccount | None:
    stmt = select(PersonAccount).where(PersonAccount.person_id == person_id)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    return session.execute(stmt).scalar_one_or_none()


def payment_password_locked(
    session: Session, person_id: uuid.UUID, now: datetime
) -> datetime | None:
    """When the person's payment password is locked, until when; else None."""
    account = account_of(session, person_id, lock=False)
    if account and account.payment_locked_until and account.payment_locked_until > now:
        return account.payment_locked_until
    return None


def verify(
    session: Session,
    rt: Runtime,
    person_id: uuid.UUID,
    verification: PaymentPasswordVerification | FaceVerification | None,
    *,
    now: datetime,
) -> None:
    """Raise VERIFICATION_REQUIRED / _FAILED / _LOCKED (or FACE_UNAVAILABLE,
    PAYMENT_PASSWORD_NOT_SET) unless the person verified. Failures of the
    payment password are counted and committed (see auth.service)."""

    if verification is None:
        raise DomainError("VERIFICATION_REQUIRED", 409)
    if isinstance(verification, FaceVerification):
        provider = face_provider(rt)
        if provider is None:
            raise DomainError("FACE_UNAVAILABLE", 409)
        if not provider.verify(person_id, verification.face_token):
            raise DomainError("VERIFICATION_FAILED", 403)
        return
    account = account_of(session, person_id, lock=True)
    if account is None:
        raise DomainError("PAYMENT_PASSWORD_NOT_SET", 409)
    verify_payment_password(session, rt, account, verification.payment_password, now=now)
