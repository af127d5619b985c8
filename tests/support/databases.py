"""What the suite takes from its environment (database URLs, CI, the test key) and the
PostgreSQL helpers around it: a private schema per process, URL options.

Tests import these from here, never from a conftest: pytest imports every
``conftest.py`` under the module name ``conftest``, so ``from conftest import …``
finds whichever was imported last (tests/web's, when both are collected).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from qinqing.kit.db import make_engine

PG_URL = os.environ.get("QINQING_TEST_DATABASE_URL")
CITUS_URL = os.environ.get("QINQING_TEST_CITUS_URL")
NO_CITUS = "QINQING_TEST_CITUS_URL is not set: Citus is neither a Debian nor a PyPI package"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_KEY = "cWlucWluZy10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGU"  # 32 bytes, urlsafe base64


def with_options(url: str, **settings: str) -> str:
    """``url`` with server settings for every connection (libpq ``options``)."""
    sep = "&" if "?" in url else "?"
    opts = "%20".join(f"-c{name}%3D{value}" for name, value in settings.items())
    return f"{url}{sep}options={opts}"


@contextmanager
def private_schema(url: str, name: str) -> Iterator[str]:
    """A fresh schema ``name`` on the server of ``url`` (left over from a killed run:
    dropped first), dropped again at the end; tests reach it with ``with_options(url,
    search_path=name)``, so parallel runs on one database never collide."""
    admin = make_engine(url, pool_size=1)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {name}"))
        yield name
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()
