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
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from qinqing.config import Env, Settings
from qinqing.entrypoints.app import attach, create_app
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.kit import db as db_kit
from qinqing.kit.clock import FrozenClock
from qinqing.kit.db import make_engine
from qinqing.runtime import Runtime
from qinqing.schema.distribution_check import read_schema
from qinqing.schema.migrate import upgrade
from support.client import AppClient
from support.databases import CITUS_URL, IN_CI, PG_URL, TEST_KEY, private_schema, with_options
from support.profiles import load_profile

# The suite's in-process apps and CLI runs keep their metrics in this process's memory
# (a test that wants the shared directory of a real deployment sets it for its own
# subprocesses): the root command would otherwise point the whole process at a
# temporary data directory's metrics/ the first time a test runs a command.
os.environ.setdefault("QINQING_METRICS_DIR", "")

HYPOTHESIS_PROFILE = load_profile(IN_CI)

# The placing machinery's own tests on tiny schemas exist only with a coordinator;
# without one, tests/citus/test_citus_placement.py alone stands for them, skipped.
collect_ignore = [] if CITUS_URL else ["citus/test_citus_distribute.py"]

if IN_CI and not PG_URL:
    raise pytest.UsageError(
        "CI=true but QINQING_TEST_DATABASE_URL is not set: PostgreSQL tests may not skip"
    )


# One engine per database URL for the whole worker, as a serving process keeps one:
# SQLAlchemy caches each statement's compiled SQL per engine, and a new engine per test
# compiled every statement again (an eighth of the suite's CPU). A test's runtime
# disposes of the engine's connections at its end; the engine itself is reused.
# Only the databases the ``database_url`` fixture hands out are reused; a test's own
# files (a CLI run's data directory, a restored backup) get engines of their own.
_ENGINES: dict[str, Engine] = {}
_REUSABLE: set[str] = set()
_make_engine = db_kit.make_engine


def _reused_engine(url: str, **kwargs: Any) -> Engine:
    if url not in _REUSABLE:
        return _make_engine(url, **kwargs)
    key = f"{url} {sorted(kwargs.items())!r}"
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = _make_engine(url, **kwargs)
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", _no_wait_for_the_wal)
        # A test's second runtime on the same database shares this engine: its
        # dispose() must not pull the pool from under the first one's connections.
        # The pool is emptied between tests (``_close_pools``).
        engine.dispose = _kept  # type: ignore[method-assign]
    return engine


def _no_wait_for_the_wal(dbapi_conn: Any, _record: Any) -> None:
    """A test database's commits do not wait for the WAL to reach the disk: a commit
    is as visible and as final to every other connection either way, only a crash of
    the PostgreSQL server could lose the last ones, and a crash loses a test database
    anyway. (A session setting on the shared engines' connections only: the fast
    path's own pool keeps the server's setting, as it does in production.)"""
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    dbapi_conn.execute("SET synchronous_commit = off")
    dbapi_conn.autocommit = autocommit


def _kept(close: bool = True) -> None:
    """A reused engine's dispose() during a test: nothing (see ``_reused_engine``)."""


def _close_pools(*, keep_one: bool = True) -> None:
    """Close the shared engines' pooled connections at a test's end. A PostgreSQL
    engine keeps its connection when the test left exactly one idle in the pool: a
    new connection costs PostgreSQL a backend and its catalog caches built again
    (almost every test opened one); the next test starts as a request does
    on a serving process, whose pool is never empty. A pool left with more (a test's
    threads, or connections it held at once) is emptied, so a test that counts or
    drops "every connection the pool holds" never meets more than one left over;
    SQLite's files are replaced for each test, so their connections always close."""
    for key, engine in _ENGINES.items():
        pooled = engine.pool.checkedin()  # type: ignore[attr-defined]
        if not keep_one or key.startswith("sqlite") or pooled > 1:
            Engine.dispose(engine)


def _release(url: str) -> None:
    """Close every pooled connection to ``url`` (before its file is replaced)."""
    for key, engine in _ENGINES.items():
        if key.split(" ", 1)[0] == url:
            Engine.dispose(engine)


@pytest.fixture(scope="session", autouse=True)
def reuse_engines() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db_kit, "make_engine", _reused_engine)
        yield
    _close_pools(keep_one=False)
    _ENGINES.clear()


@pytest.fixture(scope="session")
def sqlite_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where this process keeps its SQLite test databases: a folder of its own in the
    memory-backed /dev/shm when the machine has one (each commit's fsync costs nothing
    there), else the session's temporary folder."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("sqlite")
        return
    folder = Path(tempfile.mkdtemp(prefix=f"qinqing-tests-{os.getpid()}-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_template(sqlite_dir: Path) -> Path:
    path = sqlite_dir / "template.sqlite3"
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
        try:
            yield url
        finally:
            _dispose_reset_engine(url)


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
        try:
            yield url
        finally:
            _dispose_reset_engine(url)


_RESET_ENGINES: dict[str, Engine] = {}


def _reset_engine(url: str) -> Engine:
    """One small pool per database for the resets, kept for the session."""
    if url not in _RESET_ENGINES:
        _RESET_ENGINES[url] = make_engine(url, pool_size=1)
    return _RESET_ENGINES[url]


def _dispose_reset_engine(url: str) -> None:
    engine = _RESET_ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


@functools.cache
def _emptying_order(url: str, citus: bool) -> list[str]:
    """The tables a reset empties, each after every table whose foreign keys point at it."""
    with _reset_engine(url).connect() as conn:
        # On a Citus node, leave out the shards the coordinator holds.
        schema = read_schema(conn, only_visible=citus)
    referenced_by: dict[str, set[str]] = {name: set() for name in schema}
    for name, table in schema.items():
        for fk in table.foreign_keys:
            if fk.ref_table != name and fk.ref_table in referenced_by:
                referenced_by[fk.ref_table].add(name)
    order = graphlib.TopologicalSorter(referenced_by).static_order()
    return [t for t in order if t not in ("alembic_version", "audit_head")]


def _reset(url: str, *, citus: bool = False) -> None:
    """Empty every table a test wrote to, children first, and put the audit chain back
    at its start. DELETE of the tables that hold rows, not TRUNCATE: a TRUNCATE makes
    new files for every table it names (0.5-1 s for the whole schema, per test), on
    Citus for every shard too; deleting a test's few rows takes milliseconds."""
    tables = _emptying_order(url, citus)
    with _reset_engine(url).begin() as conn:
        if citus:
            # Citus refuses to modify a reference table after a parallel read.
            conn.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
        probe = (f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables)  # noqa: S608
        filled = set(conn.execute(text(" UNION ALL ".join(probe))).scalars())
        for t in tables:
            if t in filled:
                conn.execute(text(f'DELETE FROM "{t}"'))  # noqa: S608
        conn.execute(text("UPDATE audit_head SET seq = 0, hash = :g, mac = NULL"), {"g": "0" * 64})


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
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        # The same path for every test of this worker (so its engine is reused), a
        # fresh copy of the template each time: put in place whole (a new file), after
        # the last test's runtime closed its connections to the old one.
        path = template.with_name("test.sqlite3")
        url = f"sqlite:///{path}"
        fresh = template.with_name(f"{uuid.uuid4().hex}.sqlite3")
        shutil.copy(template, fresh)
        _release(url)
        for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        os.replace(fresh, path)
        _REUSABLE.add(url)
        yield url
    else:
        citus = request.param == "citus"
        url = request.getfixturevalue("citus_migrated" if citus else "pg_migrated")
        # Emptied before each test (whatever the last one left), not after as well.
        _reset(url, citus=citus)
        _REUSABLE.add(url)
        yield url


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
    # Every runtime of the test is done: the shared engines' connections close.
    _close_pools()


# One app per worker (and trusted-proxy setting, the one setting the app is built
# from), pointed at each test's runtime: FastAPI works out every route's dependencies
# again for each new app it serves, about a tenth of a second of CPU per test.
_APPS: dict[tuple[str, ...], FastAPI] = {}


def shared_app(rt: Runtime) -> FastAPI:
    key = tuple(rt.settings.trusted_proxy_list)
    app = _APPS.get(key)
    if app is None:
        app = _APPS[key] = create_app(rt)
    else:
        attach(app, rt)
    return app


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with AppClient(shared_app(rt), raise_server_exceptions=False) as c:
        yield c
