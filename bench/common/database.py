"""The benchmark database: its default URL, wiping it, and psql against it."""

from __future__ import annotations

import re
import subprocess

from sqlalchemy import text

from qinqing.kit.db import make_engine
from qinqing.schema.migrate import upgrade

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/qinqing_bench"


def reset_schema(url: str) -> None:
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    engine.dispose()


def libpq_url(url: str) -> str:
    return re.sub(r"^postgresql\+psycopg://", "postgresql://", url)


def psql(db: str, *commands: str) -> None:
    args = ["psql", db, "-q", "-v", "ON_ERROR_STOP=1"]
    for c in commands:  # one -c each: VACUUM refuses to run inside a transaction block
        args += ["-c", c]
    subprocess.run(args, check=True, capture_output=True)
