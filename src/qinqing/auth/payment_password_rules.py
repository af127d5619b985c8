"""Which six digits make a payment password (pure).

A payment password is what stands between a stolen phone and an unbind or a
family payment, and six digits are few: the ones people and guessers try first
are refused — the holder's birth date in its usual six-digit forms (or its
month and day anywhere in it), fewer than three different digits (``111111``,
``000001``, ``111222``, ``121212``), a digit run up or down, also across 9→0
(``123456``, ``654321``, ``789012``), three digits twice (``123123``) and
three pairs (``112233``)."""

from __future__ import annotations

import itertools
import re
from datetime import date

from qinqing.kit.errors import DomainError

_SIX_DIGITS = re.compile(r"\d{6}")


def birth_date_forms(born: date) -> tuple[set[str], str]:
    """The six-digit forms of a birth date, and its month and day (MMDD)."""
    yyyy, yy, mm, dd = (
        f"{born.year:04d}",
        f"{born.year % 100:02d}",
        f"{born.month:02d}",
        f"{born.day:02d}",
    )
    return {yy + mm + dd, dd + mm + yy, mm + dd + yy, yyyy + mm, mm + yyyy}, mm + dd


def is_weak(pin: str, born: date | None = None) -> bool:
    digits = [int(c) for c in pin]
    if len(set(digits)) < 3:
        return True
    steps = {(b - a) % 10 for a, b in itertools.pairwise(digits)}
    if steps in ({1}, {9}):
        return True
    if pin[:3] == pin[3:] or (pin[0::2] == pin[1::2]):
        return True
    if born is not None:
        forms, month_day = birth_date_forms(born)
        if pin in forms or month_day in pin:
            return True
    return False


def check_payment_password(pin: str, born: date | None = None) -> None:
    """``PAYMENT_PASSWORD_FORMAT`` unless six digits, ``PAYMENT_PASSWORD_WEAK`` when
    easy to guess (422)."""
    if not _SIX_DIGITS.fullmatch(pin):
        raise DomainError("PAYMENT_PASSWORD_FORMAT", 422)
    if is_weak(pin, born):
        raise DomainError("PAYMENT_PASSWORD_WEAK", 422)
