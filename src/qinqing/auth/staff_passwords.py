"""What a staff password must be: long, and not one that people commonly choose.

A staff account reads and changes many people's records, so its password is held
to more than a person's: at least 12 characters (NIST SP 800-63B asks for 8 and
more where the risk is higher), not on zxcvbn's list of the 30,000 most common
passwords (compared case-blind, also with trailing digits and symbols cut off, so
``Password2026!`` counts as ``password``), and not easy to guess by zxcvbn's
estimate (score 3 of 4 or more, with the username and the service's name as words
an attacker would try first)."""

from __future__ import annotations

import re
from functools import cache

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from qinqing.kit.errors import DomainError

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_SCORE = 3
_TAIL = re.compile(r"[\d\W_]+$")


@cache
def _common() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common(password: str) -> bool:
    lowered = password.lower()
    core = _TAIL.sub("", lowered)
    return lowered in _common() or (len(core) >= 4 and core in _common())


def check_staff_password(password: str, username: str) -> None:
    """``STAFF_PASSWORD_LENGTH`` or ``STAFF_PASSWORD_COMMON`` (422), else nothing."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise DomainError(
            "STAFF_PASSWORD_LENGTH", 422, min_length=MIN_LENGTH, max_length=MAX_LENGTH
        )
    if is_common(password) or username.lower() in password.lower():
        raise DomainError("STAFF_PASSWORD_COMMON", 422)
    # zxcvbn's cost grows with the length; past 64 characters a password is long enough.
    if zxcvbn(password[:64], user_inputs=[username, "qinqing", "亲情"])["score"] < MIN_SCORE:
        raise DomainError("STAFF_PASSWORD_COMMON", 422)
