"""Changing the login phone, confirmed by a code sent to the new phone
(``POST /me/phone/sms-code``, ``PUT /me/phone``).

The code proves the person holds the new number, so a login phone is never one
its owner did not confirm. Asking always answers 202 and sends the code (whether
another account uses the number is told only to whoever holds it, after the code);
the allowances count per account and per address. The change keeps the sessions
and leaves a notice."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.audit.service import record
from qinqing.auth import otp, throttle
from qinqing.auth.events import PHONE_CHANGED, AccountNotice
from qinqing.auth.models import AccountLogin
from qinqing.auth.service import person_account
from qinqing.identity.phone import normalize_phone
from qinqing.kit.errors import DomainError
from qinqing.persons.service import PHONE_KIND
from qinqing.runtime import Runtime

PURPOSE = "phone_change"


def _mobile(phone: str) -> str:
    mobile = normalize_phone(phone)
    if mobile is None:
        raise DomainError("PHONE_INVALID", 422)
    return mobile


def request_code(
    session: Session, rt: Runtime, principal: Principal, phone: str, source: str
) -> otp.Outgoing | None:
    mobile, now = _mobile(phone), rt.clock.now()
    settings = rt.settings
    throttle.take_sms(
        session,
        settings,
        "phonechange:" + principal.id,
        now,
        address_key=throttle.sms_address_key(rt.vault, source),
        commit=True,
    )
    assert principal.person_id is not None
    return otp.issue(
        session,
        rt,
        purpose=PURPOSE,
        person_id=principal.person_id,
        subject=rt.vault.index(PHONE_KIND, mobile),
        phone=mobile,
        now=now,
    )


def change(session: Session, rt: Runtime, principal: Principal, phone: str, code: str) -> None:
    mobile, now = _mobile(phone), rt.clock.now()
    index = rt.vault.index(PHONE_KIND, mobile)
    assert principal.person_id is not None
    otp.check(
        session,
        rt,
        purpose=PURPOSE,
        person_id=principal.person_id,
        subject=index,
        code=code,
        now=now,
    )
    account = person_account(session, principal, lock=True)
    if account.login_index == index:
        return
    taken = session.execute(
        select(AccountLogin.account_id).where(AccountLogin.login_index == index)
    ).first()
    if taken is not None:
        raise DomainError("PHONE_IN_USE", 409)
    session.execute(delete(AccountLogin).where(AccountLogin.login_index == account.login_index))
    session.execute(
        insert(AccountLogin).values(
            login_index=index, person_id=account.person_id, account_id=account.id
        )
    )
    account.login_index = index
    account.phone_cipher = rt.vault.encrypt(PHONE_KIND, mobile)
    record(
        session,
        actor=principal.actor,
        action="login_phone.changed",
        subject_kind="person",
        subject_id=account.person_id,
        at=now,
    )
    rt.events.publish(session, AccountNotice(account.person_id, PHONE_CHANGED, now, {}))
