"""The CSV to import: N unique rows of generated persons, about 1 % deliberately invalid."""

from __future__ import annotations

import csv
import random
from datetime import date
from pathlib import Path

from bench.common.ids import first17
from qinqing.identity.ric import with_check_digit
from qinqing.persons.import_file import EXPECTED_HEADER

REGIONS = ("150600", "440100", "110000", "500000")
SCHEMES = ("employee", "employee", "resident", "flexible")
STATUSES = ("active", "active", "active", "active", "arrears", "suspended", "terminated")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红建国志文斌宇浩然子涵欣怡梓轩雨桐一诺思远嘉怡俊杰晓东海燕丹丹"
FIRST_BIRTH = date(1930, 1, 1)
BIRTH_SPAN_DAYS = (date(2020, 12, 31) - FIRST_BIRTH).days


def _phone(rnd: random.Random) -> str:
    return f"1{rnd.choice('3456789')}{rnd.randrange(10**9):09d}"


def _invalid_row(rnd: random.Random, good: list[str]) -> list[str]:
    """One deliberately bad row, of a random kind (about 1 % of the file)."""
    kind = rnd.randrange(7)
    row = list(good)
    if kind == 0:  # wrong check digit
        last = row[0][-1]
        row[0] = row[0][:-1] + ("0" if last != "0" else "1")
    elif kind == 1:  # 30 February
        row[0] = with_check_digit(row[0][:6] + "19800230" + row[0][14:17])
    elif kind == 2:
        row[2] = "999999"
    elif kind == 3:
        row[3] = "retired"
    elif kind == 4:
        row[5] = "12345"
    elif kind == 5:
        row[1] = ""
    else:
        row = row[:4]
    return row


def generate(path: Path, rows: int, *, seed: int = 20261123) -> None:
    rnd = random.Random(seed)
    seen: set[str] = set()
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(EXPECTED_HEADER + "\n")
        out = csv.writer(fh, lineterminator="\n")
        written = 0
        while written < rows:
            first = first17(rnd, FIRST_BIRTH, BIRTH_SPAN_DAYS)
            if first in seen:
                continue
            seen.add(first)
            name = rnd.choice(SURNAMES) + "".join(rnd.choices(GIVEN, k=rnd.choice((1, 2, 2))))
            row = [
                with_check_digit(first),
                name,
                rnd.choice(REGIONS),
                rnd.choice(SCHEMES),
                rnd.choice(STATUSES),
                _phone(rnd) if rnd.random() < 0.9 else "",
            ]
            if rnd.random() < 0.01:
                row = _invalid_row(rnd, row)
            out.writerow(row)
            written += 1
