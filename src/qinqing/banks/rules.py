"""Pure decisions of the bank channel: account numbers, bank codes, webhook retries."""

from __future__ import annotations

import re
from datetime import timedelta

from stdnum import luhn

from qinqing.identity.masking import mask_account_number
from qinqing.kit.errors import DomainError

# Card numbers (ISO/IEC 7812; UnionPay cards are 16 to 19 digits) end in a Luhn
# check digit; shorter passbook and settlement account numbers have no standard one.
ACCOUNT_MIN, ACCOUNT_MAX = 12, 19
LUHN_FROM_LENGTH = 16
BANK_CODE = re.compile(r"[A-Z0-9]{2,16}")
_SEPARATORS = re.compile(r"[ \-]")


def normalize_account_number(raw: str, *, check_digit: bool = True) -> str:
    """The account number as digits, or 422 BANK_ACCOUNT_NUMBER_INVALID / _CHECK_DIGIT.

    Spaces and hyphens (as printed on cards: ``6214 8301 2345 2345``) are dropped.
    The Luhn check guards a person typing a card number; a bank sending its own
    account from its core system (``check_digit=False``) is the authority on it.
    The refusal never repeats the number.
    """
    number = _SEPARATORS.sub("", raw.strip())
    if not (number.isascii() and number.isdigit() and ACCOUNT_MIN <= len(number) <= ACCOUNT_MAX):
        raise DomainError(
            "BANK_ACCOUNT_NUMBER_INVALID", 422, min_length=ACCOUNT_MIN, max_length=ACCOUNT_MAX
        )
    if check_digit and len(number) >= LUHN_FROM_LENGTH and not luhn.is_valid(number):
        raise DomainError("BANK_ACCOUNT_NUMBER_CHECK_DIGIT", 422)
    return number


def mask_account(number: str) -> str:
    """``6214********2345``: the issuer prefix and the last four digits only."""

    return mask_account_number(number)


def valid_bank_code(code: str) -> bool:
    return BANK_CODE.fullmatch(code) is not None


# --- webhook retries ----------------------------------------------------------------

MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=60)
RETRY_FACTOR = 3
RETRY_CAP = timedelta(hours=12)


def retry_delay(attempts: int, jitter: float) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt (1-based).

    Exponential (1 min, 3 min, 9 min, ... capped at 12 h) times a jitter factor
    from ``jitter`` in [0, 1): between 0.5 and 1.0 of the step, so receivers that
    came back from an outage are not hit by every sender at the same second.
    """
    exponent = min(max(attempts - 1, 0), 12)  # 3**12 minutes is far past the cap already
    step: timedelta = min(RETRY_BASE * RETRY_FACTOR**exponent, RETRY_CAP)
    factor = 0.5 + 0.5 * min(max(jitter, 0.0), 1.0)
    return step * factor


def gives_up(attempts: int) -> bool:
    return attempts >= MAX_ATTEMPTS


def delivered(status_code: int) -> bool:
    """Standard Webhooks: any 2xx is success; everything else is retried."""
    return 200 <= status_code < 300
