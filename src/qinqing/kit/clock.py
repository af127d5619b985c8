"""One injectable clock (docs/guide.md §7): cooling-off, expiry and lockouts are testable without sleeping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to; used by tests and benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The insurance calendar (cooling-off days, ages, contribution months, the yearly
# mutual-aid limit) is China Standard Time, UTC+8, with no daylight saving.
CHINA_TZ = timezone(timedelta(hours=8), "CST")


def china_date(moment: datetime) -> date:
    """The calendar date in China at an instant (naive instants are taken as UTC)."""
    return as_utc(moment).astimezone(CHINA_TZ).date()


def china_day_start(moment: datetime) -> datetime:
    """The instant the China calendar day of ``moment`` began (aware, CST)."""
    day = china_date(moment)
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ)


def china_month_start(moment: datetime) -> datetime:
    """The instant the China calendar month of ``moment`` began (aware, CST)."""
    day = china_date(moment)
    return datetime(day.year, day.month, 1, tzinfo=CHINA_TZ)
