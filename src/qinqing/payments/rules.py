"""Pure payment rules: the insurance year, and whether an authorization, a settle or
a void may go ahead.

No I/O here: the service loads the facts (with the right rows locked) and asks
these functions; the HTTP path, the batch path and the tests share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from qinqing.kit.clock import CHINA_TZ, as_utc


def local_year(at: datetime) -> int:
    """The insurance year is the calendar year in China Standard Time."""
    return as_utc(at).astimezone(CHINA_TZ).year


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
    # A cross-region link pays only from its 共济额度: ``available_fen`` is the quota's.
    via_quota: bool = False


def payer_refusal(holder_scheme: str, holder_status: str) -> str | None:
    """Who may pay from a personal account for a family member — a payment, a resident
    contribution, a quota top-up alike: an employee whose insurance is in force."""
    if holder_scheme != "employee":
        return "HOLDER_NOT_EMPLOYEE"
    if holder_status != "active":
        return "PAYER_NOT_ACTIVE"
    return None


def authorize_refusal(f: AuthorizeFacts) -> str | None:
    """The code that refuses an authorization, or None when it may go ahead.

    Checked in a fixed order so the answer is stable: the link first (no link,
    no payment), then who pays, then how much.
    """
    if f.amount_fen <= 0:
        return "AMOUNT_INVALID"
    if not f.link_active_mutual_aid:
        return "NO_MUTUAL_AID_LINK"
    if payer := payer_refusal(f.holder_scheme, f.holder_status):
        return payer
    if f.yearly_limit_fen is not None and f.used_this_year_fen + f.amount_fen > f.yearly_limit_fen:
        return "YEARLY_LIMIT_EXCEEDED"
    if f.amount_fen > f.available_fen:
        return "QUOTA_INSUFFICIENT" if f.via_quota else "INSUFFICIENT_BALANCE"
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


# --- institution probes (docs/ledger.md "Probes by ID number") ----------------------

UNAVAILABLE = "MUTUAL_AID_UNAVAILABLE"
THROTTLED = "AUTHORIZE_RATE_LIMITED"

# The refusals of an authorization that say something about the two persons — who
# is insured where, whether they are linked, the holder's scheme, status, limit and
# balance. By two bare ID numbers, an institution the holder has shown no voucher
# is told only UNAVAILABLE for any of them. The request-shaped refusals
# (AMOUNT_INVALID, ID_NUMBER_*, PAYMENT_REFERENCE_EXISTS) stay as they are.
ABOUT_THE_PERSONS = frozenset(
    {
        "PERSON_NOT_FOUND",
        "NO_MUTUAL_AID_LINK",
        "HOLDER_NOT_EMPLOYEE",
        "PAYER_NOT_ACTIVE",
        "YEARLY_LIMIT_EXCEEDED",
        "INSUFFICIENT_BALANCE",
        "QUOTA_INSUFFICIENT",
    }
)

# The refused bare-ID authorizations an institution may be told UNAVAILABLE are
# counted in windows of this length (fast_path.sql repeats it as interval '1 hour').
PROBE_WINDOW = timedelta(hours=1)


def collapses(code: str, *, shown: bool) -> bool:
    """Whether the institution is told UNAVAILABLE instead of ``code``: a refusal
    about the persons, for an authorization without a voucher the holder showed it."""
    return not shown and code in ABOUT_THE_PERSONS


def probe_window(
    failures: int | None, started: datetime | None, now: datetime
) -> tuple[int, datetime]:
    """The (failures, start) of the client's current window: a window a full
    ``PROBE_WINDOW`` old, or none yet, starts afresh now."""
    if failures is None or started is None or now - started >= PROBE_WINDOW:
        return 0, now
    return failures, started


def probe_wait(started: datetime, now: datetime) -> int:
    """Whole seconds until the window that began at ``started`` is over (at least 1)."""
    return max(1, math.ceil((started + PROBE_WINDOW - now).total_seconds()))
