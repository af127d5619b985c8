"""Pure money rules: the contribution quote and the payment decisions.

No I/O here: the services load the facts (with the right rows locked) and ask
these functions; the HTTP path, the batch path and the tests share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from qinqing.regions.policy import ContributionPolicy

PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


# --- contributions ---------------------------------------------------------


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


# --- payments --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizeFacts:
    """What decides an authorization, read under the link and account locks."""

    link_active_mutual_aid: bool
    holder_status: str
    holder_scheme: str
    available_fen: int
    amount_fen: int
    yearly_limit_fen: int | None
    used_this_year_fen: int  # authorized (open) + settled on this link this year


def authorize_refusal(f: AuthorizeFacts) -> str | None:
    """The code that refuses an authorization, or None when it may go ahead.

    Checked in a fixed order so the answer is stable: the link first (no link,
    no payment), then who pays, then how much.
    """
    if f.amount_fen <= 0:
        return "AMOUNT_INVALID"
    if not f.link_active_mutual_aid:
        return "NO_MUTUAL_AID_LINK"
    if f.holder_scheme != "employee":
        return "HOLDER_NOT_EMPLOYEE"
    if f.holder_status != "active":
        return "PAYER_NOT_ACTIVE"
    if f.yearly_limit_fen is not None and f.used_this_year_fen + f.amount_fen > f.yearly_limit_fen:
        return "YEARLY_LIMIT_EXCEEDED"
    if f.amount_fen > f.available_fen:
        return "INSUFFICIENT_BALANCE"
    return None


def _resolved(status: str) -> str | None:
    if status == "expired":
        return "PAYMENT_EXPIRED"
    return None if status == "authorized" else "PAYMENT_ALREADY_RESOLVED"


def settle_refusal(status: str, held_fen: int, amount_fen: int) -> str | None:
    """Settle the same or a smaller amount, exactly once."""
    if refused := _resolved(status):
        return refused
    if amount_fen <= 0:
        return "AMOUNT_INVALID"
    if amount_fen > held_fen:
        return "SETTLE_EXCEEDS_HOLD"
    return None


def void_refusal(status: str) -> str | None:
    return _resolved(status)
