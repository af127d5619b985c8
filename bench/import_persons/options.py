"""The command line of ``python -m bench.import_persons``."""

from __future__ import annotations

import argparse
from pathlib import Path

import bench.import_persons
from bench.common.database import DEFAULT_DATABASE_URL


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.import_persons",
        description=(bench.import_persons.__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="a PostgreSQL database that may be wiped",
    )
    parser.add_argument("--chunk-rows", type=int, default=None)
    parser.add_argument("--keep-csv", type=Path, default=None, help="also keep the CSV here")
    return parser.parse_args(argv)
