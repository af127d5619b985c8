"""Pure voucher decisions: the issuing rate limit, whether a token may be used,
and what a family voucher can pay. No I/O; the service loads the facts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from qinqing.payments import rules as money

# Issuing: at most this many vouchers per person in any rolling window. A person
# at the counter refreshes the code now and then; a burst beyond this is a script.
ISSUE_LIMIT = 10
ISSUE_WINDOW = timedelta(seconds=60)


def issue_wait_seconds(recent: Sequence[datetime], now: datetime) -> int:
    """0 when one more voucher may be issued, else the whole seconds until one may.

    ``recent``: when this person's vouchers of the last window were issued.
    """
    inside = sorted(t for t in recent if t > now - ISSUE_WINDOW)
    if len(inside) < ISSUE_LIMIT:
        return 0
    frees_at = inside[len(inside) - ISSUE_LIMIT] + ISSUE_WINDOW
    return max(1, math.ceil((frees_at - now).total_seconds()))


@dataclass(frozen=True, slots=True)
class UseFacts:
    """A stored voucher as an institution meets it (``found=False``: no such voucher)."""

    found: bool
    family: bool = False
    link_active: bool = False
    caller_region: str | None = None
    regions: frozenset[str] = frozenset()  # the named person's and the shower's
    caller_id: str = ""
    claimed_by: str | None = None
    used: bool = False
    expires_at: datetime | None = None


def use_refusal(f: UseFacts, now: datetime) -> str | None:
    """Why an institution may not redeem (or pay with) this voucher, or None.

    In a fixed order, each answer revealing no more than the one before it: not
    ours (or its link ended) → not this region's → already used (or taken by
    another institution) → expired.
    """
    if not f.found or (f.family and not f.link_active):
        return "VOUCHER_INVALID"
    if f.caller_region not in f.regions:
        return "REGION_MISMATCH"
    if f.used or (f.claimed_by is not None and f.claimed_by != f.caller_id):
        return "VOUCHER_USED"
    if f.expires_at is None or f.expires_at <= now:
        return "VOUCHER_EXPIRED"
    return None


def pay_refusal(f: UseFacts, now: datetime) -> str | None:
    """:func:`use_refusal`, and a person's own voucher cannot pay by mutual aid."""
    if code := use_refusal(f, now):
        return code
    if not f.family:
        return "VOUCHER_NOT_FAMILY"
    return None


@dataclass(frozen=True, slots=True)
class MutualAidState:
    blocked_by: str | None
    payable_fen: int


def mutual_aid_state(
    *,
    mutual_aid: bool,
    holder_status: str,
    holder_scheme: str,
    available_fen: int,
    yearly_limit_fen: int | None,
    used_this_year_fen: int,
    via_quota: bool = False,
) -> MutualAidState:
    """What the holder's account could pay for the member now: the same rule as an
    authorization (asked for one fen), and at most the smaller of the holder's
    available balance — a cross-region link's quota, ``via_quota`` — and what is left
    of the yearly limit."""
    blocked = money.authorize_refusal(
        money.AuthorizeFacts(
            link_active_mutual_aid=mutual_aid,
            via_quota=via_quota,
            holder_status=holder_status,
            holder_scheme=holder_scheme,
            available_fen=available_fen,
            amount_fen=1,
            yearly_limit_fen=yearly_limit_fen,
            used_this_year_fen=used_this_year_fen,
        )
    )
    if blocked:
        return MutualAidState(blocked, 0)
    payable = available_fen
    if yearly_limit_fen is not None:
        payable = min(payable, yearly_limit_fen - used_this_year_fen)
    return MutualAidState(None, payable)


def first_uses(keys: Sequence[str | None]) -> list[bool]:
    """For each position, whether it is the first to name its voucher (None: none).
    A batch may use a voucher once; later operations naming it again are refused."""
    seen: set[str] = set()
    out = []
    for key in keys:
        out.append(key is not None and key not in seen)
        if key is not None:
            seen.add(key)
    return out
