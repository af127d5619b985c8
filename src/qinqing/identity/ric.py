"""Resident ID numbers (GB 11643-1999), validated per docs/guide.md §3.1.

We use python-stdnum's check digit and its GB/T 2260 table, but not
``stdnum.cn.ric.validate`` as the whole rule: it also refuses an area code
that was not in force in the birth year, and a number keeps the code it was
issued under, so that would turn away real elderly people. Here a code is
accepted when it is known in *any* era.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from stdnum import numdb
from stdnum.cn import ric

from qinqing.kit.errors import DomainError

EARLIEST_BIRTH_YEAR = 1890


@dataclass(frozen=True, slots=True)
class IdNumber:
    number: str
    birth_date: date
    sex: str  # "M" | "F": the order code is odd for men, even for women
    area_code: str


class InvalidIdNumber(DomainError):
    """Why an ID number was refused; ``code`` is one of the ID_* codes."""

    def __init__(self, code: str) -> None:
        super().__init__(code, 422)


@lru_cache(maxsize=8192)
def area_known(code: str) -> bool:
    """Whether a 6-digit code is a county-level GB/T 2260 code of any era."""
    if len(code) != 6 or not code.isdigit():
        return False
    parts = numdb.get("cn/loc").info(code)
    return any("county" in props for _, props in parts)


@lru_cache(maxsize=8192)
def area_name(code: str) -> str | None:
    """The latest name of an area code, era brackets removed."""
    parts = numdb.get("cn/loc").info(code)
    for _, props in parts:
        if "county" in props:
            return props["county"].split(",")[-1].split("]")[-1]
    return None


def normalize(raw: str) -> str:
    return raw.strip().replace(" ", "").upper()


def parse(raw: str, today: date) -> IdNumber:
    """Validate an ID number and derive birth date and sex, or raise InvalidIdNumber."""
    number = normalize(raw)
    if len(number) != 18:
        raise InvalidIdNumber("ID_NUMBER_LENGTH")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise InvalidIdNumber("ID_NUMBER_FORMAT")
    if ric.calc_check_digit(number) != number[17]:
        raise InvalidIdNumber("ID_NUMBER_CHECK_DIGIT")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber("ID_NUMBER_BIRTH_DATE") from None
    if born > today or born.year < EARLIEST_BIRTH_YEAR:
        raise InvalidIdNumber("ID_NUMBER_BIRTH_DATE")
    if not area_known(number[:6]):
        raise InvalidIdNumber("ID_NUMBER_AREA_CODE")
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    return IdNumber(number=number, birth_date=born, sex=sex, area_code=number[:6])


def with_check_digit(first17: str) -> str:
    """Complete 17 digits with their check digit (demo data and tests)."""
    return first17 + ric.calc_check_digit(first17 + "0")
