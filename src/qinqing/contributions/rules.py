"""Pure contribution rules: the quote and the contribution months (periods).

No I/O here: the service loads the region's policy and the person and asks these
functions; the public calculator, the collector's post and the tests share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from qinqing.kit.clock import CHINA_TZ, china_date
from qinqing.regions.policy import ContributionPolicy

PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True, slots=True)
class QuoteLine:
    insurance: str
    personal_fen: int
    employer_fen: int


@dataclass(frozen=True, slots=True)
class Quote:
    base_fen: int
    clamped_base_fen: int
    lines: tuple[QuoteLine, ...]
    personal_total_fen: int
    employer_total_fen: int
    total_fen: int
    personal_account_fen: int  # what is credited to an employee's personal account


def quote(policy: ContributionPolicy, base_fen: int) -> Quote:
    """Each insurance's personal and employer amount on the clamped base.

    Each amount is rounded on its own (per ``rounding``), and the totals are the
    sums of the rounded amounts, as a payslip shows them.
    """
    if base_fen < 0:
        raise ValueError("base_fen must not be negative")
    base = policy.clamp(base_fen)
    names = sorted(set(policy.personal) | set(policy.employer))
    lines = tuple(
        QuoteLine(
            insurance=name,
            personal_fen=policy.per_mille_of(base, policy.personal.get(name, 0)),
            employer_fen=policy.per_mille_of(base, policy.employer.get(name, 0)),
        )
        for name in names
    )
    personal_by_name = {line.insurance: line.personal_fen for line in lines}
    to_account = sum(
        policy.per_mille_of(personal_by_name.get(name, 0), share)
        for name, share in policy.personal_account_share.items()
    )
    personal = sum(line.personal_fen for line in lines)
    employer = sum(line.employer_fen for line in lines)
    return Quote(
        base_fen=base_fen,
        clamped_base_fen=base,
        lines=lines,
        personal_total_fen=personal,
        employer_total_fen=employer,
        total_fen=personal + employer,
        personal_account_fen=to_account,
    )


def parse_period(text: str) -> tuple[int, int] | None:
    m = PERIOD.fullmatch(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def current_period(now: datetime) -> str:
    """The calendar month in China (UTC+8) at ``now``, as ``YYYY-MM``."""
    return period_of(china_date(now))


def period_end(period: str) -> datetime:
    """The first instant after ``period`` ends: the 1st of the next month, 00:00 China time."""
    parsed = parse_period(period)
    if parsed is None:
        raise ValueError(f"not a period: {period!r}")
    year, month = parsed
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=CHINA_TZ)


def previous_period(period: str) -> str:
    parsed = parse_period(period)
    if parsed is None:
        raise ValueError(f"not a period: {period!r}")
    year, month = parsed
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"
