"""Real-name registration with proof of possession.

Knowing a person's ID number and name is not enough to open their account:
the registrant proves it is them with either

* a one-time 6-digit code sent by SMS to the phone on the registry record
  (``request_code``, then ``register`` with ``sms_code``), or
* a face check through the face provider (``register`` with ``face_token``);
  a person without a registry phone registers this way only.

Nothing here tells a stranger whether a person exists: asking for a code
always gets the same answer, throttled per ID number and per address whether
or not the person exists, and a wrong code for an unknown person is answered
exactly like a wrong code for a known one. Which codes mean "expired", "used"
or "too many tries" is only said to someone who typed the right code.

Codes are stored as a keyed hash, live 5 minutes, allow 5 wrong tries, and a
new one may be sent once a minute and a few times an hour; all from the
injected clock. Slow work (the password hash, the SMS and face providers)
runs outside any write transaction.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qinqing.auth import throttle
from qinqing.auth.models import PersonAccount, RegistrationCode
from qinqing.auth.otp import Outgoing
from qinqing.auth.service import check_password_strength, create_account, passwords
from qinqing.auth.sms import sms_provider
from qinqing.auth.verification import face_provider
from qinqing.identity import ric
from qinqing.identity.phone import normalize_phone
from qinqing.identity.vault import Vault
from qinqing.kit.errors import DomainError
from qinqing.persons.models import Person
from qinqing.persons.service import PHONE_KIND, find_by_id_number
from qinqing.runtime import Runtime

SMS_TEXT = "【医保亲情】您的注册验证码为{code}，{minutes}分钟内有效。请勿告诉他人，工作人员不会向您索要验证码。"


def code_hash(vault: Vault, person_id: uuid.UUID, nonce: str, code: str) -> str:
    return vault.index("registration-code", f"{person_id}:{nonce}:{code}")


def request_code(rt: Runtime, *, id_number: str, name: str, source: str) -> Outgoing | None:
    """Make a registration code if the details match an unregistered person with a
    registry phone; the message to send, or None. The caller answers 202 either
    way and sends the message after the answer (``deliver``), so neither the
    answer nor its timing tells whether a message went out."""
    settings, now = rt.settings, rt.clock.now()
    if sms_provider(settings) is None:
        raise DomainError("SMS_UNAVAILABLE", 409)
    number = ric.parse(id_number, now.date()).number
    # The allowance is the ID number's *with the name given*: someone who knows only
    # the number, trying names, spends allowances of their own and cannot use up the
    # person's (the review found a person's registration blocked that way). Every
    # limit is counted for every request, known person or not, so a 429 tells nothing.
    person_key = rt.vault.index("sms-id-number", f"{number}\x00{name.strip()}")
    with rt.db.unit_of_work() as session:
        throttle.take_sms(
            session,
            settings,
            "smsid:" + person_key,
            now,
            address_key=throttle.sms_address_key(rt.vault, source),
        )
        return _new_code(session, rt, number, name.strip(), now)


def _new_code(
    session: Session, rt: Runtime, number: str, name: str, now: datetime
) -> Outgoing | None:
    person = find_by_id_number(session, rt.vault, number)
    if person is None or person.name != name or person.phone_cipher is None:
        return None
    if session.execute(
        select(PersonAccount.id).where(PersonAccount.person_id == person.id)
    ).first():
        return None
    code = f"{secrets.randbelow(1_000_000):06d}"
    nonce = secrets.token_hex(16)
    # Concurrent requests for one ID number are serialized by its throttle row.
    row = session.get(RegistrationCode, person.id, with_for_update={"key_share": True})
    if row is None:
        row = RegistrationCode(person_id=person.id)
        session.add(row)
    row.nonce = nonce
    row.code_hash = code_hash(rt.vault, person.id, nonce, code)
    row.sent_at = now
    row.expires_at = now + timedelta(seconds=rt.settings.sms_code_ttl_seconds)
    row.tries = 0
    row.used_at = None
    session.flush()
    phone = rt.vault.decrypt(PHONE_KIND, person.phone_cipher)
    minutes = max(1, rt.settings.sms_code_ttl_seconds // 60)
    return Outgoing(phone, code, SMS_TEXT.format(code=code, minutes=minutes))


def check_code(
    session: Session,
    rt: Runtime,
    person_id: uuid.UUID | None,
    code: str,
    now: datetime,
    *,
    consume: bool,
) -> None:
    """Raise unless ``code`` is the person's live code; a wrong one counts a try."""
    row = (
        session.get(RegistrationCode, person_id, with_for_update={"key_share": True})
        if person_id is not None
        else None
    )
    if row is None:
        raise DomainError("SMS_CODE_INVALID", 422)
    right = hmac.compare_digest(row.code_hash, code_hash(rt.vault, row.person_id, row.nonce, code))
    dead = row.used_at is not None or row.tries >= rt.settings.sms_code_max_tries
    if not right:
        if not dead and row.expires_at > now:
            row.tries += 1
            raise DomainError("SMS_CODE_INVALID", 422, commit=True)
        raise DomainError("SMS_CODE_INVALID", 422)
    if row.used_at is not None:
        raise DomainError("SMS_CODE_USED", 409)
    if row.tries >= rt.settings.sms_code_max_tries:
        raise DomainError("SMS_CODE_LOCKED", 422)
    if row.expires_at <= now:
        raise DomainError("SMS_CODE_EXPIRED", 422)
    if consume:
        row.used_at = now


def register(
    rt: Runtime,
    *,
    id_number: str,
    name: str,
    phone: str,
    password: str,
    sms_code: str | None = None,
    face_token: str | None = None,
) -> PersonAccount:
    now = rt.clock.now()
    number = ric.parse(id_number, now.date()).number
    mobile = normalize_phone(phone)
    if mobile is None:
        raise DomainError("PHONE_INVALID", 422)
    check_password_strength(password)
    if (sms_code is None) == (face_token is None):
        raise DomainError("REGISTRATION_PROOF_REQUIRED", 422)

    with rt.db.read_only() as session:
        person = find_by_id_number(session, rt.vault, number)
        # An unknown person and a wrong name go on as "no person": the proof fails
        # for them exactly as a wrong proof does.
        person_id = person.id if person is not None and person.name == name.strip() else None

    if face_token is not None:
        provider = face_provider(rt)
        if provider is None:
            raise DomainError("FACE_UNAVAILABLE", 409)
        if person_id is None or not provider.verify(person_id, face_token):
            raise DomainError("VERIFICATION_FAILED", 403)
    else:
        assert sms_code is not None
        with rt.db.unit_of_work() as session:
            check_code(session, rt, person_id, sms_code, now, consume=False)
    assert person_id is not None
    _check_login_phone(rt, person_id, mobile, by_sms=sms_code is not None)

    password_hash = passwords(rt).hash(password)  # outside any transaction
    with rt.db.unit_of_work() as session:
        if sms_code is not None:
            # Checked again and used up in the transaction that creates the account.
            check_code(session, rt, person_id, sms_code, now, consume=True)
        return create_account(
            session, rt, person_id=person_id, mobile=mobile, password_hash=password_hash, now=now
        )


def _check_login_phone(rt: Runtime, person_id: uuid.UUID, mobile: str, *, by_sms: bool) -> None:
    """The login phone must be one the person holds. With an SMS code it is the phone
    on the registry record (the code proved it; another can be set afterwards with a
    code sent to it). With a face check, it may not be another person's registry
    phone. Either way "is this phone registered?" cannot be asked with one code:
    ``PHONE_NOT_VERIFIED`` comes before any look-up of the logins."""
    index = rt.vault.index(PHONE_KIND, mobile)
    with rt.db.read_only() as session:
        if by_sms:
            own = session.execute(
                select(Person.phone_index).where(Person.id == person_id)
            ).scalar_one_or_none()
            if own != index:
                raise DomainError("PHONE_NOT_VERIFIED", 422)
            return
        others = session.execute(
            select(Person.id).where(Person.phone_index == index, Person.id != person_id).limit(1)
        ).first()
        if others is not None:
            raise DomainError("PHONE_NOT_VERIFIED", 422)


def purge_codes(session: Session, now: datetime) -> int:
    """Delete codes that expired more than a day ago (for the background job)."""
    result = session.execute(
        delete(RegistrationCode).where(RegistrationCode.expires_at < now - timedelta(days=1))
    )
    return int(getattr(result, "rowcount", 0) or 0)
