"""``python -m bench.import_persons``: generate the CSV, then time ``import_csv`` on it.

See the package's docstring and docs/benchmarks.md."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.common.database import reset_schema
from bench.common.ids import AREA_CODES
from bench.import_persons.generate import generate
from bench.import_persons.options import parse_args
from bench.import_persons.report import print_report
from qinqing.audit.actor import Actor
from qinqing.config import Env, Settings
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.identity.ric import area_known
from qinqing.identity.vault import generate_key
from qinqing.persons.importer import import_csv


def main() -> int:
    args = parse_args()

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

    print_report(args.rows, seconds, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
