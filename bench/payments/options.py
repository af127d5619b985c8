"""The command line of ``python -m bench.payments``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common.database import DEFAULT_DATABASE_URL


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.payments", description="Payments benchmark (issues 4 and 12)."
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="a PostgreSQL database on this machine that may be wiped",
    )
    parser.add_argument("--seconds", type=int, default=20, help="length of each measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (a b [c] d), medians")
    parser.add_argument("--families", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument("--batch-clients", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument("--port", type=int, default=8799, help="(c) uses the next port")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds per server, unmeasured")
    parser.add_argument(
        "--grouped",
        action="store_true",
        help="also measure (c): a second server with QINQING_GROUP_COMMIT=on",
    )
    parser.add_argument(
        "--server",
        choices=("uvicorn", "granian"),
        default="uvicorn",
        help="the HTTP server: `qinqing serve` (uvicorn with uvloop and httptools), or "
        "Granian for a side-by-side measurement (needs `pip install granian`)",
    )
    parser.add_argument(
        "--citus-url",
        help="also measure (e) single payments and (f) batches against this Citus "
        "coordinator (its workers on this machine too: every node's CPU is counted); "
        "its database is WIPED",
    )
    parser.add_argument(
        "--citus-families", type=int, default=2_000, help="families seeded on the coordinator"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    return parser.parse_args(argv)
