"""Fixtures shared by the whole suite.

Every storage and API test runs twice: on SQLite and on PostgreSQL. The
PostgreSQL URL comes from QINQING_TEST_DATABASE_URL; without it those cases
skip with a visible reason, except under CI=true where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from qinqing.app import create_app
from qinqing.clock import FrozenClock
from qinqing.config import Env, Settings
from qinqing.db import make_engine
from qinqing.migrate import upgrade
from qinqing.runtime import Runtime, build_runtime

PG_URL = os.environ.get("QINQING_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_KEY = "cWlucWluZy10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGU"  # 32 bytes, urlsafe base64

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
    schema = f"qq_test_{os.getpid()}"
    admin = make_engine(PG_URL, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    engine = make_engine(url, pool_size=1)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


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


@pytest.fixture(
    params=[
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
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "qinqing.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_migrated")
        _pg_reset(url)
        yield url
        _pg_reset(url)


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
