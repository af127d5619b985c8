"""Login throttling per account and per source address, counted in the database.

Counters are keyed by an HMAC of the login text (never the text itself) so a
login name that has no account is throttled exactly like one that has: the
answers cannot tell whether an account exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.auth.models import LoginThrottle
from qinqing.config import Settings
from qinqing.db import insert_ignore

WINDOW = timedelta(minutes=15)


def _row(session: Session, key: str, now: datetime) -> LoginThrottle:
    insert_ignore(session, LoginThrottle, {"key": key, "failures": 0, "window_started_at": now})
    return session.execute(
        select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
    ).scalar_one()


def locked_for(session: Session, keys: list[str], now: datetime) -> int:
    """Seconds until every given key is unlocked (0 when none is locked)."""
    rows = session.execute(select(LoginThrottle).where(LoginThrottle.key.in_(keys))).scalars()
    wait = 0
    for row in rows:
        if row.locked_until and row.locked_until > now:
            wait = max(wait, int((row.locked_until - now).total_seconds()) + 1)
    return wait


def record_failure(
    session: Session, key: str, limit: int, lock_for: timedelta, now: datetime
) -> None:
    row = _row(session, key, now)
    if now - row.window_started_at > WINDOW:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    if row.failures >= limit:
        row.locked_until, row.failures, row.window_started_at = now + lock_for, 0, now


def clear(session: Session, key: str) -> None:
    row = session.get(LoginThrottle, key)
    if row is not None:
        session.delete(row)


def lock_duration(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.login_lock_minutes)
