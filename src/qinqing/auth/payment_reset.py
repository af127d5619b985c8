"""A forgotten or locked payment password, reset only after a step-up: a code sent
to the registry phone, or a face check (``POST /me/payment-password/reset/sms-code``,
``POST /me/payment-password/reset``).

A logged-in session alone (a stolen token) is not enough to replace the payment
password, since that would also lift its lock; the step-up is what the token's
thief lacks. A person without a registry phone gets a decoy code (nobody receives
it) and uses the face check or the counter."""

from __future__ import annotations

from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.audit.service import record
from qinqing.auth import otp, throttle
from qinqing.auth.events import PAYMENT_PASSWORD_RESET, AccountNotice
from qinqing.auth.payment_password_rules import check_payment_password
from qinqing.auth.service import passwords, person_account
from qinqing.auth.verification import face_provider
from qinqing.kit.errors import DomainError
from qinqing.persons.models import Person
from qinqing.persons.service import PHONE_KIND
from qinqing.runtime import Runtime

PURPOSE = "payment_password_reset"


def request_code(session: Session, rt: Runtime, principal: Principal) -> otp.Outgoing | None:
    now, settings = rt.clock.now(), rt.settings
    throttle.take_sms(
        session,
        settings,
        "payreset:" + principal.id,
        now,
        commit=True,
    )
    assert principal.person_id is not None
    person = session.get(Person, principal.person_id)
    phone = (
        rt.vault.decrypt(PHONE_KIND, person.phone_cipher)
        if person is not None and person.phone_cipher is not None
        else None
    )
    return otp.issue(
        session, rt, purpose=PURPOSE, person_id=principal.person_id, phone=phone, now=now
    )


def reset(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    new_payment_password: str,
    sms_code: str | None = None,
    face_token: str | None = None,
) -> None:
    """The caller's session must have no open transaction (the hash runs first)."""
    if (sms_code is None) == (face_token is None):
        raise DomainError("REGISTRATION_PROOF_REQUIRED", 422)
    assert principal.person_id is not None
    person = session.get(Person, principal.person_id)
    assert person is not None
    check_payment_password(new_payment_password, person.birth_date)
    if face_token is not None:
        provider = face_provider(rt)
        if provider is None:
            raise DomainError("FACE_UNAVAILABLE", 409)
        if not provider.verify(principal.person_id, face_token):
            raise DomainError("VERIFICATION_FAILED", 403)
    session.commit()
    new_hash = passwords(rt).hash(new_payment_password)
    now = rt.clock.now()
    if sms_code is not None:
        otp.check(
            session, rt, purpose=PURPOSE, person_id=principal.person_id, code=sms_code, now=now
        )
    account = person_account(session, principal, lock=True)
    account.payment_password_hash = new_hash
    # The step-up is the proof a lock waits for: it lifts it.
    account.payment_failures = 0
    account.payment_locked_until = None
    record(
        session,
        actor=principal.actor,
        action="payment_password.reset",
        subject_kind="person",
        subject_id=account.person_id,
        at=now,
        details={"proof": "sms_code" if sms_code else "face"},
    )
    rt.events.publish(session, AccountNotice(account.person_id, PAYMENT_PASSWORD_RESET, now, {}))
