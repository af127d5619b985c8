"""Pure rules of a cross-region link's 共济额度 (quota): who may fill it, and what the
ledger's transfers on it mean to the people who read it.

The quota is an account of the holder's (``ledger_accounts``, kind ``quota``): money
the holder moved aside for one relative insured beyond the holder's policy's
mutual-aid scope. The holder cannot spend it; the relative's payments and resident
contributions draw only on it; whatever is not spent returns when the link ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from qinqing.payments.rules import payer_refusal

# A top-up is one personal-account movement: at most what a personal account could
# plausibly hold (100 million yuan), so a typo of many zeros is refused as such.
MAX_TOP_UP_FEN = 10_000_000_000

# Ledger transfer kinds that move money in and out of a quota.
TOP_UP = "quota"
REFUND = "quota_refund"

# What each transfer kind is, seen from the quota (GET …/quota "entries").
ENTRY_KIND = {
    TOP_UP: "top_up",
    REFUND: "refund",
    "payment": "payment",
    "resident": "resident_contribution",
}


@dataclass(frozen=True, slots=True)
class TopUpFacts:
    """What decides a top-up, read under the link's lock."""

    link_status: str
    mutual_aid: bool
    via_quota: bool
    holder_scheme: str
    holder_status: str
    amount_fen: int


def top_up_refusal(f: TopUpFacts) -> str | None:
    """The code refusing a top-up, or None. The amount first (a request mistake), then
    the link, then who pays; the balance is checked under the account lock."""
    if f.amount_fen <= 0 or f.amount_fen > MAX_TOP_UP_FEN:
        return "QUOTA_AMOUNT_INVALID"
    if f.link_status != "active" or not f.mutual_aid:
        return "NO_MUTUAL_AID_LINK"
    if not f.via_quota:
        return "QUOTA_NOT_CROSS_REGION"
    return payer_refusal(f.holder_scheme, f.holder_status)


def available(balance_fen: int, held_fen: int) -> int:
    """What the relative's next payment may use: the quota less its open holds."""
    return balance_fen - held_fen
