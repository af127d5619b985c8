"""Mainland mobile numbers: 11 digits starting 13-19."""

from __future__ import annotations

import re

_MOBILE = re.compile(r"1[3-9]\d{9}")


def normalize_phone(raw: str) -> str | None:
    """The bare 11-digit number, or None when it is not a mainland mobile number."""
    digits = raw.strip().replace(" ", "").replace("-", "")
    if digits.startswith("+86"):
        digits = digits[3:]
    return digits if _MOBILE.fullmatch(digits) else None
