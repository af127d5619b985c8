"""Login and SMS throttling, counted in the database so a restart resets nothing.

Counters are keyed by an HMAC of the login text or address (never the text
itself), so a login name that has no account is throttled exactly like one
that has: the answers cannot tell whether an account exists.

Per account the policy is a growing delay, not a long lock: after
``login_max_failures`` failures in a row, each further failure makes the next
attempt wait 1 s, 2 s, 4 s ... up to ``login_delay_cap_seconds``. Guessing
stays slow, yet the real owner is never shut out for long. Per source address
a plain window limit (``login_max_failures_per_address`` failures within
``login_lock_minutes``) stops one machine from trying many accounts. All of it
is computed from stored times and the injected clock; nothing sleeps.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from qinqing.auth.models import LoginThrottle
from qinqing.config import Settings
from qinqing.identity.vault import Vault
from qinqing.kit.db import insert_ignore
from qinqing.kit.errors import DomainError

DAY = timedelta(days=1)


def account_key(vault: Vault, ident: str) -> str:
    return "acct:" + vault.index("login", ident)


def address_key(vault: Vault, address: str) -> str:
    return "addr:" + vault.index("address", address)


def _row(session: Session, key: str, now: datetime) -> LoginThrottle:
    insert_ignore(session, LoginThrottle, {"key": key, "failures": 0, "window_started_at": now})
    return session.execute(
        select(LoginThrottle).where(LoginThrottle.key == key).with_for_update(key_share=True)
    ).scalar_one()


def locked_counter(session: Session, key: str, now: datetime) -> LoginThrottle:
    """The counter of ``key`` (created empty, its window starting ``now``, if it is
    new), locked ``FOR NO KEY UPDATE`` for this transaction: for counters another
    package keeps in this table (the payments' probe counter)."""
    return _row(session, key, now)


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def wait_for(session: Session, keys: list[str], now: datetime) -> int:
    """Seconds until every given key may try again (0 when none is held back)."""
    rows = session.execute(select(LoginThrottle).where(LoginThrottle.key.in_(keys))).scalars()
    wait = 0
    for row in rows:
        if row.locked_until and row.locked_until > now:
            wait = max(wait, _seconds(row.locked_until - now))
    return wait


def account_delay(settings: Settings, failures: int) -> int:
    """Seconds the next attempt must wait after ``failures`` failures in a row."""
    over = failures - settings.login_max_failures
    if over < 0:
        return 0
    # 2**over grows fast; cap the exponent before computing it.
    return min(settings.login_delay_cap_seconds, int(2 ** min(over, 30)))


def record_login_failure(
    session: Session, settings: Settings, acct_key: str, addr_key: str, now: datetime
) -> None:
    acct = _row(session, acct_key, now)
    memory = timedelta(hours=settings.login_failure_memory_hours)
    if acct.last_failure_at is None or now - acct.last_failure_at > memory:
        acct.failures, acct.window_started_at = 0, now
    acct.failures += 1
    acct.last_failure_at = now
    delay = account_delay(settings, acct.failures)
    acct.locked_until = now + timedelta(seconds=delay) if delay else None

    addr = _row(session, addr_key, now)
    window = timedelta(minutes=settings.login_lock_minutes)
    if now - addr.window_started_at > window:
        addr.failures, addr.window_started_at = 0, now
    addr.failures += 1
    addr.last_failure_at = now
    if addr.failures >= settings.login_max_failures_per_address:
        addr.locked_until, addr.failures, addr.window_started_at = now + window, 0, now


def clear(session: Session, key: str) -> None:
    row = session.get(LoginThrottle, key)
    if row is not None:
        session.delete(row)


def take(
    session: Session,
    key: str,
    *,
    per_window: int,
    window: timedelta,
    now: datetime,
    min_gap: timedelta | None = None,
) -> int:
    """Count one use of ``key`` if allowed; else the seconds to wait (nothing counted).

    At most ``per_window`` uses per fixed ``window``, and (optionally) at least
    ``min_gap`` between two uses. The row is locked, so concurrent uses count
    one at a time.
    """
    row = _row(session, key, now)
    if now - row.window_started_at >= window:
        row.failures, row.window_started_at = 0, now
    if min_gap is not None and row.last_failure_at is not None:
        ready = row.last_failure_at + min_gap
        if ready > now:
            return _seconds(ready - now)
    if row.failures >= per_window:
        return _seconds(row.window_started_at + window - now)
    row.failures += 1
    row.last_failure_at = now
    return 0


def take_sms(
    session: Session,
    settings: Settings,
    key: str,
    now: datetime,
    *,
    address_key: str | None = None,
    commit: bool = False,
) -> None:
    """One one-time code for ``key`` (a purpose and whose allowance it is): the resend
    gap and the hourly cap, the daily cap, and, with ``address_key``, the sending
    address's hourly cap. Raises 429 ``SMS_CODE_THROTTLED`` with the wait (counted
    nothing); ``commit`` keeps what the caller's transaction counted before."""
    wait = (
        take(
            session,
            key,
            per_window=settings.sms_max_per_hour,
            window=timedelta(hours=1),
            min_gap=timedelta(seconds=settings.sms_resend_seconds),
            now=now,
        )
        or take(session, key + ":day", per_window=settings.sms_max_per_day, window=DAY, now=now)
        or (
            take(
                session,
                address_key,
                per_window=settings.sms_max_per_address_hour,
                window=timedelta(hours=1),
                now=now,
            )
            if address_key is not None
            else 0
        )
    )
    if wait:
        raise DomainError("SMS_CODE_THROTTLED", 429, retry_after=wait, commit=commit)


def sms_address_key(vault: Vault, source: str) -> str:
    return "smsaddr:" + vault.index("address", source)


def purge(session: Session, settings: Settings, now: datetime) -> int:
    """Delete counters that can no longer hold anyone back (for the background job)."""
    # The longest any counter still matters: the account memory (a day by default,
    # which covers the daily SMS caps), or an hour of SMS sends.
    horizon = now - max(timedelta(hours=settings.login_failure_memory_hours), timedelta(hours=1))
    result = session.execute(
        delete(LoginThrottle)
        .where(
            func.coalesce(LoginThrottle.last_failure_at, LoginThrottle.window_started_at) < horizon
        )
        .where(or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now))
    )
    return int(getattr(result, "rowcount", 0) or 0)
