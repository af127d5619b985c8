"""Pure rules of paying a relative's resident insurance (共济缴费, docs/family.md).

No I/O: the service reads the facts (the member's region policy, today's date in
China time) and asks :func:`terms`. ``year`` is always the **cover year** C.

* The enrollment window (集中参保期) for C is the policy's ``MM-DD/MM-DD`` in
  C−1 (``09-01/12-31`` → 2026-09-01…2026-12-31 for 2027). Inside it, cover
  starts on 1 January of C.
* After the window the policy's ``late_payment`` decides: ``refused`` →
  ``ENROLLMENT_CLOSED``; ``waiting_period`` → accepted, cover from the payment
  date plus ``waiting_period_days`` (never before 1 January of C); when that
  falls after 31 December of C there is no cover left to buy:
  ``ENROLLMENT_CLOSED`` too.
* Only C = this year (late) or next year (its window) can be paid:
  anything else is ``RESIDENT_YEAR_INVALID``; next year before its window
  opens is ``ENROLLMENT_NOT_OPEN``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from qinqing.regions.policy import LatePayment, ResidentPolicy


@dataclass(frozen=True, slots=True)
class Window:
    """The enrollment window for one cover year: both days included, in C−1."""

    cover_year: int
    opens_on: date
    closes_on: date


@dataclass(frozen=True, slots=True)
class Terms:
    """An accepted contribution: what it costs and from when it covers."""

    year: int
    amount_fen: int
    cover_starts_on: date
    late: bool  # paid after the window (the waiting period applied)


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    status: int
    params: dict[str, Any] = field(default_factory=dict)


def _day(year: int, month: int, day: int) -> date:
    """A window's day in ``year``; 02-29 is the last day of February in a common year."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def window_for(policy: ResidentPolicy, cover_year: int) -> Window:
    (m1, d1), (m2, d2) = policy.window()
    return Window(cover_year, _day(cover_year - 1, m1, d1), _day(cover_year - 1, m2, d2))


def payable_years(today: date) -> tuple[int, int]:
    """The cover years that can be paid at all on ``today``: this one (late) and the next."""
    return today.year, today.year + 1


def terms(policy: ResidentPolicy, cover_year: int, today: date) -> Terms | Refusal:
    """Whether a contribution for ``cover_year`` may be paid on ``today`` (China time),
    and on which terms."""
    earliest, latest = payable_years(today)
    if not earliest <= cover_year <= latest:
        return Refusal("RESIDENT_YEAR_INVALID", 422, {"earliest": earliest, "latest": latest})
    w = window_for(policy, cover_year)
    if today < w.opens_on:
        return Refusal(
            "ENROLLMENT_NOT_OPEN",
            409,
            {"year": cover_year, "opens_on": w.opens_on.isoformat()},
        )
    first_day = date(cover_year, 1, 1)
    amount = policy.annual_contribution_fen
    if today <= w.closes_on:
        return Terms(cover_year, amount, first_day, late=False)
    closed = Refusal(
        "ENROLLMENT_CLOSED", 409, {"year": cover_year, "closed_on": w.closes_on.isoformat()}
    )
    if policy.late_payment is LatePayment.refused:
        return closed
    starts = max(first_day, today + timedelta(days=policy.waiting_period_days))
    if starts > date(cover_year, 12, 31):
        return Refusal(
            closed.code,
            closed.status,
            {**closed.params, "cover_would_start": starts.isoformat()},
        )
    return Terms(cover_year, amount, starts, late=True)
