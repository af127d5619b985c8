"""Fixtures shared by the whole suite.

Every storage and API test runs twice: on SQLite and on PostgreSQL. The
PostgreSQL URL comes from QINQING_TEST_DATABASE_URL; without it those cases
skip with a visible reason, except under CI=true where that is a failure.
With QINQING_TEST_CITUS_URL (a Citus coordinator) each also runs a third time,
on Citus with the tables placed (docs/operations.md, "Running the tests on
Citus"); without it that case does not exist, so nothing skips for it.
"""

from __future__ import annotations

import functools
import graphlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from qinqing.config import Env, Settings
from qinqing.entrypoints.app import create_app
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.kit.clock import FrozenClock
from qinqing.kit.db import make_engine
from qinqing.runtime import Runtime
from qinqing.schema.distribution_check import read_schema
from qinqing.schema.migrate import upgrade

# The suite's in-process apps and CLI runs keep their metrics in this process's memory
# (a test that wants the shared directory of a real deployment sets it for its own
# subprocesses): the root command would otherwise point the whole process at a
# temporary data directory's metrics/ the first time a test runs a command.
os.environ.setdefault("QINQING_METRICS_DIR", "")

PG_URL = os.environ.get("QINQING_TEST_DATABASE_URL")
CITUS_URL = os.environ.get("QINQING_TEST_CITUS_URL")
NO_CITUS = "QINQING_TEST_CITUS_URL is not set: Citus is neither a Debian nor a PyPI package"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_KEY = "cWlucWluZy10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGU"  # 32 bytes, urlsafe base64

# The placing machinery's own tests on tiny schemas exist only with a coordinator;
# without one, tests/citus/test_citus_placement.py alone stands for them, skipped.
collect_ignore = [] if CITUS_URL else ["citus/test_citus_distribute.py"]

if IN_CI and not PG_URL:
    raise pytest.UsageError(
        "CI=true but QINQING_TEST_DATABASE_URL is not set: PostgreSQL tests may not skip"
    )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> Iterator[str]:
    """A private schema per test session, so parallel runs on one database never collide."""
    assert PG_URL
    with private_schema(PG_URL, f"qq_test_{os.getpid()}") as schema:
        url = with_options(PG_URL, search_path=schema)
        engine = make_engine(url, pool_size=1)
        upgrade(engine)
        engine.dispose()
        yield url


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


@pytest.fixture(scope="session")
def citus_migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private schema on the Citus coordinator, migrated and placed once per session."""
    assert CITUS_URL
    with private_schema(CITUS_URL, f"qq_citus_{os.getpid()}") as schema:
        # 4 shards per table, not 32: placing and each test's TRUNCATE visit every shard.
        url = with_options(CITUS_URL, search_path=schema, **{"citus.shard_count": "4"})
        # As `QINQING_DISTRIBUTED=citus qinqing db upgrade` does it.
        settings = Settings(
            database_url=url,
            distributed="citus",
            env=Env.test,
            secret_key=TEST_KEY,
            data_dir=tmp_path_factory.mktemp("citus"),
        )
        build_runtime(settings).db.dispose()
        yield url


def _pg_reset(url: str) -> None:
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename NOT IN ('alembic_version', 'audit_head')"
                )
            )
            .scalars()
            .all()
        )
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
        conn.execute(text("UPDATE audit_head SET seq = 0, hash = :g, mac = NULL"), {"g": "0" * 64})
    engine.dispose()


@functools.cache
def _emptying_order(url: str) -> list[str]:
    """The tables a reset empties, each after every table whose foreign keys point at it."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            schema = read_schema(conn, only_visible=True)
    finally:
        engine.dispose()
    referenced_by: dict[str, set[str]] = {name: set() for name in schema}
    for name, table in schema.items():
        for fk in table.foreign_keys:
            if fk.ref_table != name and fk.ref_table in referenced_by:
                referenced_by[fk.ref_table].add(name)
    order = graphlib.TopologicalSorter(referenced_by).static_order()
    return [t for t in order if t not in ("alembic_version", "audit_head")]


def _citus_reset(url: str) -> None:
    """On Citus a TRUNCATE visits every shard of every table it names, and CASCADE from
    regions names them all (about 0.5 s): DELETE only the tables a test wrote to."""
    tables = _emptying_order(url)
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:
        # Citus refuses to modify a reference table after a parallel read.
        conn.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
        probe = (f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables)  # noqa: S608
        filled = set(conn.execute(text(" UNION ALL ".join(probe))).scalars())
        for t in tables:
            if t in filled:
                conn.execute(text(f'DELETE FROM "{t}"'))  # noqa: S608
        conn.execute(text("UPDATE audit_head SET seq = 0, hash = :g, mac = NULL"), {"g": "0" * 64})
    engine.dispose()


DATABASES = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not PG_URL, reason="PostgreSQL case: set QINQING_TEST_DATABASE_URL to run it"
            ),
        ],
    ),
]
if CITUS_URL:
    DATABASES.append(pytest.param("citus", marks=[pytest.mark.citus]))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "qinqing.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        citus = request.param == "citus"
        url = request.getfixturevalue("citus_migrated" if citus else "pg_migrated")
        reset = _citus_reset if citus else _pg_reset
        reset(url)
        yield url
        reset(url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        env=Env.test,
        secret_key=TEST_KEY,
        face_provider="simulated",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )


@pytest.fixture
def rt(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = build_runtime(settings, clock=clock, migrate=False)
    yield runtime
    runtime.db.dispose()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c
