"""Engine, declarative base, and one unit of work per request or command.

SQLite (the embedded default) serializes writers: every transaction starts
with ``BEGIN IMMEDIATE`` so a read-then-write never fails half-way with
SQLITE_BUSY. PostgreSQL uses row locks, taken by the services in one global
order (``docs/ledger.md`` "Lock order"): regions, family links, persons,
app accounts, ledger accounts, payments, the audit head. Rows whose key never
changes — all of them — are locked ``FOR NO KEY UPDATE``
(``with_for_update(key_share=True)``), which, unlike ``FOR UPDATE``, does not
conflict with the ``FOR KEY SHARE`` a foreign-key check takes on the row.

A transaction that still loses a conflict (a deadlock, a serialization
failure, SQLite busy) is not an error of the request: :func:`conflict_of`
recognises it and the whole unit of work is run again (:meth:`Database.run`
here, ``qinqing.http.retry`` for HTTP requests), a bounded number of times.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.types import TypeDecorator

from qinqing.kit import metrics
from qinqing.kit.clock import as_utc
from qinqing.kit.errors import DomainError

log = logging.getLogger("qinqing.db")
T = TypeVar("T")

# How often a unit of work is run in all before the caller is told to retry later.
MAX_ATTEMPTS = 4
# SQLite busy comes after the driver already waited busy_timeout for the write
# lock: one more try, not three (a request must not hang for minutes).
SQLITE_BUSY_ATTEMPTS = 2
# A dropped connection: the pool is renewed at the first one, so one more run.
DISCONNECT_ATTEMPTS = 2
# What a 503 RETRY_LATER tells the client to wait, in seconds.
RETRY_AFTER_SECONDS = 1
SQLITE_BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 2
POOL_TIMEOUT_S = 5
# PostgreSQL SQLSTATEs that a fresh run of the same transaction may not meet again.
RETRYABLE_SQLSTATES = {"40001": "serialization_failure", "40P01": "deadlock_detected"}
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def conflict_of(exc: BaseException) -> str | None:
    """``"40001"``, ``"40P01"``, ``"sqlite_busy"`` or ``"disconnect"`` when ``exc`` (or what it wraps)
    is a transaction conflict that running the whole transaction again may resolve;
    None for any other error."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        state = getattr(err, "sqlstate", None)
        if isinstance(state, str) and state in RETRYABLE_SQLSTATES:
            return state
        # The server dropped a pooled connection (a restart, a failover): SQLAlchemy
        # has invalidated the pool, and a fresh run gets a fresh connection.
        if getattr(err, "connection_invalidated", False):
            return "disconnect"
        if isinstance(err, sqlite3.OperationalError):
            code = getattr(err, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
                return "sqlite_busy"
            text_ = str(err).lower()
            if "database is locked" in text_ or "database table is locked" in text_:
                return "sqlite_busy"
        todo.extend([getattr(err, "orig", None), err.__cause__, err.__context__])
    return None


# SQLSTATE classes and codes of a database that is not there: connection exceptions
# (08xxx), an administrator's or a crash's shutdown, "the database system is
# starting up / shutting down" (57P01-57P03).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")


def unavailable_of(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database cannot be reached at all:
    refused or failed connections, a server shutting down, a pool that waited in
    vain. The request did nothing; it should be answered 503 at once, not retried
    here (the caller retries after ``Retry-After``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        state = getattr(err, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES):
            return True
        name = type(err).__name__
        module = type(err).__module__
        # psycopg's connection failures (no SQLSTATE: refused, reset, timed out) and
        # psycopg_pool's PoolTimeout; SQLAlchemy's own pool timeout.
        if (
            module.startswith("psycopg")
            and name in ("OperationalError", "PoolTimeout")
            and not state
        ):
            return True
        if module.startswith("sqlalchemy") and name == "TimeoutError":
            return True
        todo.extend([getattr(err, "orig", None), err.__cause__, err.__context__])
    return False


def attempts_for(conflict: str) -> int:
    """How many runs in all a unit of work gets for this kind of conflict."""
    if conflict == "disconnect":
        return DISCONNECT_ATTEMPTS
    return SQLITE_BUSY_ATTEMPTS if conflict == "sqlite_busy" else MAX_ATTEMPTS


class RetryLater(DomainError):
    """A unit of work lost a conflict on every attempt: 503 RETRY_LATER, nothing applied."""

    def __init__(self, conflict: str) -> None:
        super().__init__("RETRY_LATER", 503, retry_after=RETRY_AFTER_SECONDS)
        self.conflict = conflict


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: short, growing, jittered so
    the transactions that collided do not collide again in step."""
    return random.uniform(0.005, 0.025) * float(2**attempt)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class CountingQueuePool(QueuePool):
    """The ordinary pool, counting the callers waiting for a connection
    (``qinqing_db_pool_waiting``; an uncontended checkout is counted for microseconds)."""

    def _do_get(self) -> ConnectionPoolEntry:
        with metrics.pool_wait():
            return super()._do_get()


def _count_checkouts(engine: Engine) -> None:
    """``qinqing_db_pool_in_use``: connections out of this engine's pool."""

    @event.listens_for(engine, "checkout")
    def _out(*_: Any) -> None:
        metrics.pool_checked_out(1)

    @event.listens_for(engine, "checkin")
    def _in(*_: Any) -> None:
        metrics.pool_checked_out(-1)


def make_engine(
    url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, **kwargs: Any
) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            private_file(Path(path))
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
            **kwargs,
        )
        _sqlite_serialized_writers(engine, busy_timeout_ms)
        _count_checkouts(engine)
        return engine
    kwargs.setdefault("poolclass", CountingQueuePool)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # While the database is away a request must fail fast (503), not hang: a new
    # connection gives up after CONNECT_TIMEOUT_S (libpq's least), a request that
    # waits for a pooled one after POOL_TIMEOUT_S.
    kwargs.setdefault("pool_timeout", POOL_TIMEOUT_S)
    if "connect_timeout" not in url:
        kwargs.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT_S})
    # No ping before every checkout (a round trip per request): a connection the
    # server dropped fails its first statement, and the unit of work is run again
    # on a fresh one (``conflict_of`` → "disconnect").
    kwargs.setdefault("pool_pre_ping", False)
    engine = create_engine(url, **kwargs)
    _count_checkouts(engine)
    return engine


def private_dir(path: Path) -> None:
    """Create a data directory readable by its owner only (0700); an existing one is
    left as the operator made it."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)


def private_file(path: Path) -> None:
    """Create an (empty) file with mode 0600 in a private directory, before SQLite
    opens it with the process umask; SQLite gives its -wal and -shm files the
    database file's mode."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return


# Execution option of a Database.snapshot connection (SQLite: BEGIN DEFERRED).
_READ_SNAPSHOT = "qinqing_read_snapshot"


def _sqlite_serialized_writers(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read-only unit (Database.read_only) or a read snapshot (Database.snapshot)
        # takes no write lock: in WAL mode a deferred transaction reads one
        # consistent state while the writer goes on.
        options = conn.get_execution_options()
        if options.get("qinqing_read_only") or options.get(_READ_SNAPSHOT, False):
            conn.exec_driver_sql("BEGIN DEFERRED")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the engine and hands out units of work."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(qinqing_read_only=True), expire_on_commit=False
        )
        # Conflicts met (by SQLSTATE or "sqlite_busy"), each answered by a retry
        # or, after the last attempt, by RetryLater: what operators watch.
        self.conflicts: Counter[str] = Counter()
        self._conflicts_lock = threading.Lock()

    def note_conflict(self, conflict: str, attempt: int, what: str) -> bool:
        """Count and log a conflict; whether the unit of work may run again."""
        with self._conflicts_lock:
            self.conflicts[conflict] += 1
        limit = attempts_for(conflict)
        log.warning(
            "transaction conflict %s (%s) on %s, attempt %d of %d",
            conflict,
            RETRYABLE_SQLSTATES.get(conflict, conflict),
            what,
            attempt,
            limit,
        )
        return attempt < limit

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """Commit on success, roll back on error; services only flush.

        A DomainError raised with ``commit=True`` (a counted verification
        failure, say) is itself a state change and is committed before it
        propagates.
        """
        session = self.sessions()
        try:
            yield session
            session.commit()
        except DomainError as exc:
            if exc.commit:
                session.commit()
            else:
                session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def read_only(self) -> Iterator[Session]:
        """A unit that only reads and never takes SQLite's write lock; always rolled back.

        For the step before slow work (a password hash, a call to a provider), so
        the write transaction that follows is short.
        """
        session = self._read_sessions()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def run(self, fn: Callable[[Session], T], *, what: str = "unit of work") -> T:
        """``fn`` in a unit of work, run again from the start (reads included) after a
        conflict, at most :func:`attempts_for` times in all; then :class:`RetryLater`.

        For callers that are not HTTP requests (the CLI, the worker); requests are
        retried whole by ``qinqing.http.retry``. ``fn`` must have no effect outside the
        database that a second run would repeat.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.unit_of_work() as session:
                    return fn(session)
            except Exception as exc:
                conflict = conflict_of(exc)
                if conflict is None:
                    raise
                if not self.note_conflict(conflict, attempt, what):
                    raise RetryLater(conflict) from exc
                time.sleep(backoff(attempt))

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only session on one consistent snapshot of the whole database.

        PostgreSQL: REPEATABLE READ, READ ONLY (every statement sees the state at
        the first one; it never blocks writers or is blocked by them). SQLite: one
        deferred read transaction, which in WAL mode is a snapshot too.
        """
        if self.is_sqlite:
            options: dict[str, Any] = {_READ_SNAPSHOT: True}
        else:
            options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        with self.engine.connect().execution_options(**options) as conn:
            session = Session(bind=conn, expire_on_commit=False)
            try:
                with conn.begin():
                    yield session
            finally:
                session.close()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def citus_version(connection: Connection) -> str | None:
    """The installed Citus extension's version; None on SQLite or plain PostgreSQL."""
    if connection.dialect.name != "postgresql":
        return None
    version = connection.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'citus'")
    ).scalar()
    return None if version is None else str(version)


def on_citus(db: Database) -> bool:
    """Whether the database is a Citus coordinator (its extension is installed)."""
    with db.engine.connect() as conn:
        return citus_version(conn) is not None


def insert_ignore(session: Session, model: type[Base], values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on either database (get-or-create without a race)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(pg_insert(model).values(**values).on_conflict_do_nothing())
    else:
        session.execute(sqlite_insert(model).values(**values).on_conflict_do_nothing())
