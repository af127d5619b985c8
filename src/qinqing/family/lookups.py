"""Failed member look-ups per holder per day (policy ``bind_lookups_per_day``).

Binding names a member by ID number and name; an unknown number and a name
that does not match answer the same ``MEMBER_NOT_FOUND``, and each such failure
counts for the holder. Past the day's allowance every binding request of that
holder is refused with 429 until the next day (Beijing calendar), so guessing
names is no way to learn who is insured. Counted in the database
(``login_throttle``, keyed by the holder) and committed with the refusal.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.auth.models import LoginThrottle
from qinqing.kit.clock import china_day_start
from qinqing.kit.db import insert_ignore


def _key(holder_id: uuid.UUID) -> str:
    return f"bind-lookup:{holder_id}"


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The Beijing calendar day of ``now``: its start and the next day's start (UTC-aware)."""
    start = china_day_start(now)
    return start, start + timedelta(days=1)


def wait_seconds(session: Session, holder_id: uuid.UUID, allowance: int, now: datetime) -> int:
    """Seconds until the holder may bind again (0: not held back). Read without a lock."""
    row = session.get(LoginThrottle, _key(holder_id))
    start, next_day = day_bounds(now)
    if row is None or row.window_started_at < start or row.failures < allowance:
        return 0
    return max(1, math.ceil((next_day - now).total_seconds()))


def count_failure(session: Session, holder_id: uuid.UUID, now: datetime) -> None:
    """One more failed look-up today (the row locked, so concurrent failures all count).
    The row is kept until the next day starts (``locked_until``), whatever the purge."""
    start, next_day = day_bounds(now)
    key = _key(holder_id)
    insert_ignore(session, LoginThrottle, {"key": key, "failures": 0, "window_started_at": now})
    row = session.execute(
        select(LoginThrottle).where(LoginThrottle.key == key).with_for_update(key_share=True)
    ).scalar_one()
    if row.window_started_at < start:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    row.last_failure_at = now
    row.locked_until = next_day
    session.flush()
