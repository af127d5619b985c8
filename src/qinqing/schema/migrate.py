"""Run Alembic migrations programmatically (``qinqing db upgrade`` and first start)."""

from __future__ import annotations

import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from qinqing.schema import citus


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "qinqing.schema:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, *, distributed: bool = False) -> None:
    """``distributed``: the database is a Citus coordinator; place the tables as
    qinqing.schema.distribution says, in the same transaction (all or nothing)."""
    if not distributed and current_revision(engine) == head_revision():
        # Every start comes here: reading the one version row is enough when it is
        # the newest. Alembic's own check would import every migration script and run
        # the environment again (about a quarter of a second of CPU per command).
        # A Citus coordinator takes the whole path: placing is checked there too.
        return
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    if engine.dialect.name == "sqlite":
        _upgrade_sqlite(engine, cfg)
        return
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if not distributed:
            command.upgrade(cfg, "head")
            return

        citus.prepare(conn)
        with citus.placing_new_tables(conn):
            command.upgrade(cfg, "head")
        citus.distribute(conn)


def _upgrade_sqlite(engine: Engine, cfg: Config) -> None:
    """SQLite rebuilds a table to change its keys; with foreign keys enforced, dropping
    the old copy of a referenced table would fail. They are switched off (outside a
    transaction, where SQLite allows it) while migrating, and the result is checked
    with ``PRAGMA foreign_key_check`` before the migration commits."""
    with engine.connect() as conn:
        # On the driver's connection: SQLAlchemy would begin a transaction first.
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left {len(broken)} rows without their parent")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


@functools.cache
def head_revision() -> str | None:
    """The newest migration this code ships (read once per process: the scripts are
    part of the installed package and do not change under a running process)."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's migration (None: not migrated yet)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
