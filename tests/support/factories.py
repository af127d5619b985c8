"""Plain functions that build test data: ID numbers, person rows, CSV files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from qinqing.identity import ric

PERSONS_HEADER = ("id_number", "name", "region_code", "scheme", "status", "phone")


def id_number(
    area: str = "150602", born: date = date(1980, 1, 1), seq: int = 1, sex: str = "F"
) -> str:
    """A valid 18-digit ID number; the order code is ``seq * 2`` (+1 for men) modulo
    1000, so ``seq`` and ``seq + 500`` give the same number."""
    if seq < 0:
        raise ValueError("seq must be 0 or more")
    if sex not in ("M", "F"):
        raise ValueError("sex must be M or F")
    order = seq * 2 + (1 if sex == "M" else 0)
    return ric.with_check_digit(f"{area}{born:%Y%m%d}{order % 1000:03d}")


def make_id_number_ending_x(area: str = "150602", born: date = date(1980, 1, 1)) -> str:
    """A valid ID number whose check digit is ``X``."""
    for seq in range(500):
        for sex in ("F", "M"):
            number = id_number(area, born, seq, sex)
            if number.endswith("X"):
                return number
    raise AssertionError("no order code gives an X check digit")  # pragma: no cover


def with_wrong_check_digit(number: str) -> str:
    """The same number with another (wrong) check digit."""
    right = number[-1]
    return number[:-1] + ("1" if right == "0" else "0")


def person_row(
    id_number: str,
    name: str = "张三",
    region_code: str = "150600",
    scheme: str = "employee",
    status: str = "active",
    phone: str = "",
) -> list[str]:
    """One data row of a persons CSV, in column order."""
    return [id_number, name, region_code, scheme, status, phone]


def persons_csv_text(
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str] | None = PERSONS_HEADER,
    line_terminator: str = "\n",
) -> str:
    """CSV text: the header (unless None), then the rows; an empty row is a blank line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=line_terminator)
    if header is not None:
        writer.writerow(header)
    for row in rows:
        if row:
            writer.writerow(row)
        else:
            out.write(line_terminator)
    return out.getvalue()


def write_persons_csv(
    path: Path,
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str] | None = PERSONS_HEADER,
    bom: bool = False,
    line_terminator: str = "\n",
) -> Path:
    """Write a persons CSV (UTF-8, optionally with a BOM) and return its path."""
    text = persons_csv_text(rows, header=header, line_terminator=line_terminator)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path
