"""Set-based SQL for the payment engine, one statement per table whatever the
batch size. On PostgreSQL lists travel as single array parameters (``= ANY``,
``unnest``) and rows as ``COPY``, so a statement's text — and its compiled form —
does not grow with the batch; SQLite, the embedded default, gets the plain
portable forms.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any
from typing import cast as cast_type

from sqlalchemy import (
    ColumnElement,
    Table,
    any_,
    bindparam,
    cast,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import TypeEngine

from qinqing.kit.db import Base

COPY_FROM_ROWS = 50


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def any_of(
    session: Session,
    column: InstrumentedAttribute[Any],
    values: Sequence[Any],
    item_type: TypeEngine[Any],
) -> ColumnElement[bool]:
    """``column IN values`` as one array parameter on PostgreSQL."""
    if is_postgres(session):
        return column == any_(
            cast(bindparam(None, list(values), type_=ARRAY(item_type)), ARRAY(item_type))
        )
    return column.in_(list(values))


def pairs_in(
    session: Session,
    a: InstrumentedAttribute[Any],
    b: InstrumentedAttribute[Any],
    pairs: Sequence[tuple[uuid.UUID, uuid.UUID]],
) -> ColumnElement[bool]:
    """``(a, b) IN pairs`` — on PostgreSQL through ``unnest`` of two uuid arrays."""
    if is_postgres(session):
        # Unique parameter names: one statement may hold two of these.
        return tuple_(a, b).in_(
            text("SELECT * FROM unnest(CAST(:pa AS uuid[]), CAST(:pb AS uuid[]))").bindparams(
                bindparam("pa", [p[0] for p in pairs], unique=True),
                bindparam("pb", [p[1] for p in pairs], unique=True),
            )
        )
    return tuple_(a, b).in_(list(pairs))


def _table(model: type[Base]) -> Table:
    return cast_type(Table, model.__table__)


def update_by_key(
    session: Session,
    model: type[Base],
    rows: list[dict[str, Any]],
    key: dict[str, str],
    columns: dict[str, str],
) -> None:
    """Set ``columns`` from ``rows`` matched by the (composite) primary ``key``; both
    map a column name to its PostgreSQL type."""
    if not rows:
        return
    table = _table(model)
    if is_postgres(session):
        names = [*key, *columns]
        types = {**key, **columns}
        args = ", ".join(f"CAST(:{n} AS {types[n]}[])" for n in names)
        sets = ", ".join(f"{n} = v.{n}" for n in columns)
        match = " AND ".join(f"t.{k} = v.{k}" for k in key)
        sql = text(
            f"UPDATE {table.name} AS t SET {sets} FROM unnest({args}) "  # noqa: S608 - names are ours
            f"AS v({', '.join(names)}) WHERE {match}"
        )
        session.execute(sql, {n: [r[n] for r in rows] for n in names})
        return
    stmt = (
        update(table)
        .where(*(table.c[k] == bindparam(f"_{k}") for k in key))
        .values({n: bindparam(n) for n in columns})
    )
    session.execute(
        stmt,
        [{**{f"_{k}": r[k] for k in key}, **{n: r[n] for n in columns}} for r in rows],
    )


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys): ``COPY`` on PostgreSQL for many rows
    (below ``COPY_FROM_ROWS`` its extra round trips cost more than they save)."""
    if not rows:
        return
    table = _table(model)
    if len(rows) < COPY_FROM_ROWS or not is_postgres(session):
        session.execute(table.insert(), rows)
        return
    names = list(rows[0])
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for r in rows:
            # JSON columns travel as their text.
            copy.write_row([json.dumps(v) if isinstance(v, dict) else v for v in map(r.get, names)])
