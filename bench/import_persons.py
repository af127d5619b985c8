"""Benchmark: `persons import` of N rows into PostgreSQL (target: 1,000,000 rows < 120 s).

    .venv/bin/python bench/import_persons.py --rows 1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/qinqing_bench

The database named by ``--database-url`` is WIPED (its ``public`` schema is
dropped and recreated, then migrated). The CSV (N unique rows, about 1 %
deliberately invalid) is generated into a temporary file first; only
``import_csv`` is timed, end to end (reading, validation, vault, COPY, insert,
audit entry, commit).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text

from qinqing.audit.actor import Actor
from qinqing.config import Env, Settings
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.identity.ric import area_known, with_check_digit
from qinqing.identity.vault import generate_key
from qinqing.kit.db import make_engine
from qinqing.persons.import_file import EXPECTED_HEADER
from qinqing.persons.importer import import_csv
from qinqing.schema.migrate import upgrade

TARGET_SECONDS = 120.0

# Real county-level GB/T 2260 codes, some of them abolished (110103 崇文区,
# 110104 宣武区, 110224 大兴县, 360427 星子县): numbers keep their old codes.
AREA_CODES = (
    "110101",
    "110102",
    "110103",
    "110104",
    "110105",
    "110106",
    "110108",
    "110224",
    "120101",
    "120104",
    "130102",
    "140105",
    "150102",
    "150602",
    "150603",
    "150621",
    "150622",
    "210102",
    "220102",
    "230102",
    "310101",
    "310104",
    "310115",
    "320102",
    "320106",
    "330102",
    "330106",
    "340102",
    "350102",
    "360102",
    "360427",
    "370102",
    "410102",
    "420102",
    "430102",
    "430121",
    "440103",
    "440104",
    "440106",
    "440304",
    "450102",
    "460105",
    "500101",
    "500103",
    "510104",
    "510107",
    "520102",
    "530102",
    "610102",
    "610113",
    "620102",
    "630102",
    "640104",
    "650102",
)
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
            born = FIRST_BIRTH + timedelta(days=rnd.randrange(BIRTH_SPAN_DAYS))
            first17 = f"{rnd.choice(AREA_CODES)}{born:%Y%m%d}{rnd.randrange(1000):03d}"
            if first17 in seen:
                continue
            seen.add(first17)
            name = rnd.choice(SURNAMES) + "".join(rnd.choices(GIVEN, k=rnd.choice((1, 2, 2))))
            row = [
                with_check_digit(first17),
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


def reset_schema(url: str) -> None:
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/qinqing_bench",
        help="a PostgreSQL database that may be wiped",
    )
    parser.add_argument("--chunk-rows", type=int, default=None)
    parser.add_argument("--keep-csv", type=Path, default=None, help="also keep the CSV here")
    args = parser.parse_args()

    missing = [c for c in AREA_CODES if not area_known(c)]
    if missing:
        print(f"unknown area codes in the generator: {missing}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="qinqing-bench-") as tmp:
        csv_path = args.keep_csv or Path(tmp) / "persons.csv"
        t0 = time.perf_counter()
        generate(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.rows} rows ({size_mb:.1f} MB) in {time.perf_counter() - t0:.1f} s")

        reset_schema(args.database_url)
        settings = Settings(
            database_url=args.database_url,
            env=Env.test,
            secret_key=generate_key(),
            data_dir=Path(tmp) / "data",
        )
        rt = build_runtime(settings, migrate=False)
        kwargs = {"chunk_rows": args.chunk_rows} if args.chunk_rows else {}

        started = time.perf_counter()
        report = import_csv(rt, csv_path, actor=Actor("operator", "bench", "admin"), **kwargs)
        seconds = time.perf_counter() - started
        rt.db.dispose()

    rate = args.rows / seconds if seconds else float("inf")
    # The target is for 1,000,000 rows; smaller runs are held to the same rate.
    target = TARGET_SECONDS * args.rows / 1_000_000
    met = seconds < target
    print(f"rows:     {args.rows}")
    print(f"seconds:  {seconds:.1f}")
    print(f"rows/s:   {rate:,.0f}")
    print(f"taken:    {report.taken}")
    print(f"refused:  {len(report.refused)}")
    print(f"cores:    {os.cpu_count()}")
    verdict = "met" if met else "MISSED"
    print(
        f"target:   {verdict} ({seconds:.1f} s, target {target:.1f} s = 120 s per 1,000,000 rows)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
