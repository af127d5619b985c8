"""`qinqing db upgrade` and QINQING_DISTRIBUTED: unset or empty migrates one database;
`citus` also places the tables, and refuses (exit 2, saying why, before touching
anything) any other value, SQLite, or a PostgreSQL without the citus extension."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from qinqing.entrypoints.cli import app
from qinqing.kit.db import make_engine
from support.databases import PG_URL, TEST_KEY, private_schema, with_options


def _upgrade(tmp_path: Path, **env: str | None) -> tuple[int, str]:
    base: dict[str, str | None] = {
        "QINQING_DATABASE_URL": None,
        "QINQING_DATA_DIR": str(tmp_path / "data"),
        "QINQING_ENV": "test",
        "QINQING_SECRET_KEY": TEST_KEY,
        "QINQING_DISTRIBUTED": None,
    }
    r = CliRunner().invoke(app, ["db", "upgrade"], env={**base, **env})
    return r.exit_code, r.output


def test_unset_or_empty_migrates_one_database(tmp_path: Path) -> None:
    assert _upgrade(tmp_path)[0] == 0
    assert _upgrade(tmp_path, QINQING_DISTRIBUTED="")[0] == 0


def test_another_value_is_refused_naming_the_allowed_ones(tmp_path: Path) -> None:
    code, out = _upgrade(tmp_path, QINQING_DISTRIBUTED="yes")
    assert code == 2
    assert "QINQING_DISTRIBUTED must be unset, empty or 'citus', not 'yes'" in out
    assert not (tmp_path / "data" / "qinqing.sqlite3").exists()


def test_citus_on_sqlite_is_refused(tmp_path: Path) -> None:
    code, out = _upgrade(tmp_path, QINQING_DISTRIBUTED="citus")
    assert code == 2
    assert "needs QINQING_DATABASE_URL to name a Citus coordinator" in out
    assert not (tmp_path / "data" / "qinqing.sqlite3").exists()


@pytest.fixture
def empty_pg_schema() -> Iterator[str]:
    assert PG_URL
    with private_schema(PG_URL, f"qq_nocitus_{os.getpid()}") as schema:
        yield schema


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="set QINQING_TEST_DATABASE_URL to run it")
def test_citus_without_the_extension_is_refused_and_nothing_migrated(
    tmp_path: Path, empty_pg_schema: str
) -> None:
    assert PG_URL
    url = with_options(PG_URL, search_path=empty_pg_schema)
    code, out = _upgrade(tmp_path, QINQING_DATABASE_URL=url, QINQING_DISTRIBUTED="citus")
    assert code == 2
    assert "the database has no citus extension" in out
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = :s"),
                {"s": empty_pg_schema},
            ).scalar()
    finally:
        engine.dispose()
    assert tables == 0
