"""Purpose-scoped one-time codes, sent by SMS to the phone on the registry record.

One live code per (person, purpose, subject): the purpose says what the code
is for (``bank_link_confirm``; later ``password_reset``, ``phone_change``),
the subject what it is about (the bank link's id; ``""`` when there is none).
A new code for the same triple replaces the old one. Only a keyed hash of the
code is stored (the vault's index key over purpose, person, subject, a fresh
nonce and the code), so a database dump does not reveal it.

Asking for a code for nobody (a person that does not exist, a name that does
not match, a person without a registry phone) stores a *decoy*: a row with a
random code nobody receives, under the id the caller gives (a random one for
nobody). Checking a code against a decoy does the same work and gives the same
answers as against a real code typed wrongly — wrong, then locked after the
allowed tries, expired after the lifetime — so the answers of :func:`check`
may be plain (``SMS_CODE_INVALID`` / ``_LOCKED`` / ``_EXPIRED`` / ``_USED``)
without telling anyone whether a person is behind the code.

Codes live 10 minutes and allow 5 wrong tries, from the injected clock.
Services only flush; sending (:func:`deliver`) happens after the transaction.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from qinqing.auth.models import OneTimeCode
from qinqing.auth.sms import sms_provider
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime

log = logging.getLogger(__name__)

TTL = timedelta(minutes=10)
MAX_TRIES = 5
HASH_KIND = "one-time-code"

# What a code may be for; each has its message (``{code}`` and ``{minutes}``).
TEXTS = {
    "phone_change": (
        "【医保亲情】您正在将此号码设为医保亲情账户的登录手机号，验证码{code}，{minutes}分钟内有效。"
        "如非本人操作，请勿告诉任何人。"
    ),
    "payment_password_reset": (
        "【医保亲情】您正在重置医保亲情账户的支付密码，验证码{code}，{minutes}分钟内有效。"
        "如非本人操作，请勿告诉任何人，并尽快修改登录密码。"
    ),
    "password_reset": (
        "【医保亲情】您正在重置医保亲情账户的登录密码，验证码{code}，{minutes}分钟内有效。"
        "如非本人操作，请勿告诉任何人。"
    ),
    "bank_link_confirm": (
        "【医保亲情】{bank}申请将尾号{last4}的银行账户关联您的医保账户，验证码{code}，"
        "{minutes}分钟内有效。如同意，请将验证码告知该银行APP；如非本人申请，请勿告诉任何人。"
    ),
}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to hand to the SMS provider after the transaction committed."""

    to: str
    code: str
    text: str


def _hash(rt: Runtime, row: OneTimeCode, code: str) -> str:
    return rt.vault.index(
        HASH_KIND, f"{row.purpose}:{row.person_id}:{row.subject}:{row.nonce}:{code}"
    )


def _row(session: Session, person_id: uuid.UUID, purpose: str, subject: str) -> OneTimeCode | None:
    return session.get(
        OneTimeCode, (person_id, purpose, subject), with_for_update={"key_share": True}
    )


def issue(
    session: Session,
    rt: Runtime,
    *,
    purpose: str,
    person_id: uuid.UUID,
    subject: str = "",
    phone: str | None,
    now: datetime,
    **fields: str,
) -> Outgoing | None:
    """Make a new code for (person, purpose, subject), replacing a live one.

    ``phone`` is the registry phone in clear, or None for nobody (a decoy:
    the row is written all the same and the code goes nowhere). Returns the
    message to send, or None. ``fields`` fill the purpose's text.
    """
    if purpose not in TEXTS:
        raise ValueError(f"unknown one-time code purpose {purpose!r}")
    code = f"{secrets.randbelow(1_000_000):06d}"
    row = _row(session, person_id, purpose, subject)
    if row is None:
        row = OneTimeCode(person_id=person_id, purpose=purpose, subject=subject)
        session.add(row)
    row.nonce = secrets.token_hex(16)
    row.code_hash = _hash(rt, row, code)
    row.sent_at = now
    row.expires_at = now + TTL
    row.tries = 0
    row.used_at = None
    session.flush()
    if phone is None:
        return None
    minutes = int(TTL.total_seconds() // 60)
    return Outgoing(phone, code, TEXTS[purpose].format(code=code, minutes=minutes, **fields))


def check(
    session: Session,
    rt: Runtime,
    *,
    purpose: str,
    person_id: uuid.UUID,
    subject: str = "",
    code: str,
    now: datetime,
    consume: bool = True,
) -> None:
    """Return if ``code`` is the live code of (person, purpose, subject), and use it
    up (``consume``); raise otherwise. A wrong code counts a try, kept even though
    the caller's transaction fails (``commit=True``): 422 ``SMS_CODE_INVALID``;
    after :data:`MAX_TRIES` wrong tries 422 ``SMS_CODE_LOCKED``; past its lifetime
    422 ``SMS_CODE_EXPIRED``; used 409 ``SMS_CODE_USED``; no code at all
    ``SMS_CODE_INVALID`` as a wrong one."""
    row = _row(session, person_id, purpose, subject)
    if row is None:
        raise DomainError("SMS_CODE_INVALID", 422)
    right = hmac.compare_digest(row.code_hash, _hash(rt, row, code.strip()))
    if row.used_at is not None:
        raise DomainError("SMS_CODE_USED", 409)
    if row.tries >= MAX_TRIES:
        raise DomainError("SMS_CODE_LOCKED", 422)
    if row.expires_at <= now:
        raise DomainError("SMS_CODE_EXPIRED", 422)
    if not right:
        row.tries += 1
        session.flush()
        raise DomainError("SMS_CODE_INVALID", 422, commit=True)
    if consume:
        row.used_at = now
        session.flush()


def delivers_at_once(rt: Runtime) -> bool:
    """The simulated provider only appends a line to a local file (demo and tests),
    so it may write before the answer: whoever reads the file right after finds
    the code. Real providers send after the answer."""
    provider = sms_provider(rt.settings)
    return provider is not None and provider.name == "simulated"


def deliver(rt: Runtime, message: Outgoing) -> None:
    """Hand a code to the SMS provider; a failure is logged (without the phone)."""
    provider = sms_provider(rt.settings)
    if provider is None:
        return
    try:
        provider.send_code(message.to, message.code, message.text)
    except Exception:  # runs after the answer; nothing to tell the caller
        log.exception("one-time code SMS not sent (provider %s)", provider.name)


def send(
    rt: Runtime,
    message: Outgoing | None,
    *,
    later: Callable[[Callable[[Runtime, Outgoing], None], Runtime, Outgoing], object],
    commit: Callable[[], object] | None = None,
) -> None:
    """Send a code once the caller's transaction is over. A real provider sends after
    the answer (``later``, e.g. a response's background task), so a slow gateway
    neither delays the answer nor shows in its timing; the simulated one writes at
    once, after ``commit``, so whoever reads its file on the answer finds the code."""
    if message is None:
        return
    if delivers_at_once(rt):
        if commit is not None:
            commit()
        deliver(rt, message)
    else:
        later(deliver, rt, message)


def purge(session: Session, now: datetime) -> int:
    """Delete codes that expired more than a day ago (for the background job)."""
    result = session.execute(
        delete(OneTimeCode).where(OneTimeCode.expires_at < now - timedelta(days=1))
    )
    return int(getattr(result, "rowcount", 0) or 0)
