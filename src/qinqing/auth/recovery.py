"""A forgotten login password: reset with a code sent to the registry phone, or a
face check (``POST /auth/password-reset/sms-code``, ``POST /auth/password-reset``).

The registry phone is the one the insurance agency holds, not the login phone a
thief could have changed: the code goes there. Asking answers 202 whoever asks;
a code is sent only when the ID number and name match a person with an app account
and a registry phone, and for anyone else a decoy code (nobody receives it) is
kept under an id derived from the ID number, so checking answers exactly as for a
real code typed wrongly. The allowances count per ID number *with the name given*
and per address, found or not. A reset ends every session of the account and
clears its login lock: it is the owner's way back in that an attacker who keeps
failing logins cannot block (the code's own tries are counted instead)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth import otp, sessions, throttle
from qinqing.auth.events import PASSWORD_RESET, AccountNotice
from qinqing.auth.models import PersonAccount
from qinqing.auth.service import check_password_strength, passwords
from qinqing.auth.sms import sms_provider
from qinqing.auth.verification import face_provider
from qinqing.identity import ric
from qinqing.kit.errors import DomainError
from qinqing.persons.service import PHONE_KIND, find_by_id_number
from qinqing.runtime import Runtime

PURPOSE = "password_reset"


def _subject_id(rt: Runtime, session: Session, number: str, name: str) -> tuple[uuid.UUID, bool]:
    """The person the code is for, and whether it is a real one with an account; for
    anyone else a stable decoy id (from the keyed index of the number and name)."""
    person = find_by_id_number(session, rt.vault, number)
    if person is not None and person.name == name:
        has_account = session.execute(
            select(PersonAccount.id).where(PersonAccount.person_id == person.id)
        ).first()
        if has_account is not None:
            return person.id, True
    decoy = rt.vault.index("password-reset-decoy", f"{number}\x00{name}")
    return uuid.UUID(decoy[:32]), False


def request_code(rt: Runtime, *, id_number: str, name: str, source: str) -> otp.Outgoing | None:
    """The message to send after the answer, or None; 202 either way."""
    settings, now = rt.settings, rt.clock.now()
    if sms_provider(settings) is None:
        raise DomainError("SMS_UNAVAILABLE", 409)
    number, name = ric.parse(id_number, now.date()).number, name.strip()
    key = rt.vault.index("reset-id-number", f"{number}\x00{name}")
    with rt.db.unit_of_work() as session:
        throttle.take_sms(
            session,
            settings,
            "pwreset:" + key,
            now,
            address_key=throttle.sms_address_key(rt.vault, source),
        )
        person_id, real = _subject_id(rt, session, number, name)
        phone = None
        if real:
            person = find_by_id_number(session, rt.vault, number)
            assert person is not None
            if person.phone_cipher is not None:
                phone = rt.vault.decrypt(PHONE_KIND, person.phone_cipher)
        return otp.issue(session, rt, purpose=PURPOSE, person_id=person_id, phone=phone, now=now)


def reset(
    rt: Runtime,
    *,
    id_number: str,
    name: str,
    new_password: str,
    sms_code: str | None = None,
    face_token: str | None = None,
) -> None:
    """Set a new login password after the proof; every session ends, the login lock
    is cleared, the person is told. Refusals are those of the proof."""
    now = rt.clock.now()
    number, name = ric.parse(id_number, now.date()).number, name.strip()
    check_password_strength(new_password)
    if (sms_code is None) == (face_token is None):
        raise DomainError("REGISTRATION_PROOF_REQUIRED", 422)
    with rt.db.read_only() as session:
        person_id, real = _subject_id(rt, session, number, name)
    if face_token is not None:
        provider = face_provider(rt)
        if provider is None:
            raise DomainError("FACE_UNAVAILABLE", 409)
        if not real or not provider.verify(person_id, face_token):
            raise DomainError("VERIFICATION_FAILED", 403)
    new_hash = passwords(rt).hash(new_password)  # outside any transaction
    with rt.db.unit_of_work() as session:
        if sms_code is not None:
            otp.check(session, rt, purpose=PURPOSE, person_id=person_id, code=sms_code, now=now)
        if not real:  # a decoy's code reaches nobody: unreachable but for a guess
            raise DomainError("SMS_CODE_INVALID", 422)
        account = session.execute(
            select(PersonAccount).where(PersonAccount.person_id == person_id).with_for_update()
        ).scalar_one()
        account.password_hash = new_hash
        ended = sessions.end_others(session, rt, str(account.id), keep=None)
        phone = rt.vault.decrypt(PHONE_KIND, account.phone_cipher)
        throttle.clear(session, throttle.account_key(rt.vault, phone))
        record(
            session,
            actor=Actor("person", str(person_id), "app"),
            action="password.reset",
            subject_kind="person",
            subject_id=person_id,
            at=now,
            details={"proof": "sms_code" if sms_code else "face", "sessions_ended": ended},
        )
        rt.events.publish(
            session, AccountNotice(person_id, PASSWORD_RESET, now, {"sessions_ended": ended})
        )
