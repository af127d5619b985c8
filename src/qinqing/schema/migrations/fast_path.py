"""The payment fast path's functions, (re)installed by each migration that changes them.

``qinqing/payments/fast_path.sql`` holds every function with ``CREATE OR REPLACE``,
so running it again is harmless. SQLite has no stored functions and keeps the ORM
path: there this does nothing."""

from __future__ import annotations

from importlib import resources

from alembic import op


def fast_path_sql() -> str:
    return resources.files("qinqing.payments").joinpath("fast_path.sql").read_text("utf-8")


def install_fast_path() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Driver SQL: the file holds several statements and no parameters.
        bind.exec_driver_sql(fast_path_sql())
