"""Row locks that work on one PostgreSQL (or SQLite) and on a Citus cluster alike.

On a distributed database a locking statement must name one owner (the
distribution column) by equality, so it runs on one shard; Citus refuses a
``FOR UPDATE`` that spans shards. A unit of work on such a database carries
``one_lock_per_row`` in ``session.info`` (set at start-up when the ``citus``
extension is present, ``qinqing.runtime``), and these helpers then take the
same locks one owner at a time, in the caller's order; elsewhere one
statement takes them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select
from sqlalchemy.orm import Session


def one_lock_per_row(session: Session) -> bool:
    return bool(session.info.get("one_lock_per_row"))


def locked(
    session: Session,
    stmt: Select[*tuple[Any, ...]],
    together: ColumnElement[bool],
    one_by_one: Sequence[ColumnElement[bool]],
) -> list[Row[Any]]:
    """Run a locking ``stmt`` filtered by ``together`` — or, on a distributed database,
    once per ``one_by_one`` filter, each naming one owner by equality, in the order
    given (the caller's lock order)."""
    if one_lock_per_row(session):
        return [row for cond in one_by_one for row in session.execute(stmt.where(cond))]
    return list(session.execute(stmt.where(together)))


def claim(
    session: Session,
    stmt: Select[*tuple[Any, ...]],
    keys: Sequence[Any],
    limit: int,
) -> list[Any]:
    """Queue rows for a worker: ``stmt`` (filtered and ordered, not locked) limited to
    ``limit`` rows, locked ``FOR NO KEY UPDATE SKIP LOCKED`` so two workers never
    claim the same row. On a distributed database the candidates are read first
    without a lock, a page of ``limit`` at a time, then each is locked by its full key
    (``keys``: the model's key columns, owner first) and re-checked, skipping those
    another worker has; the next page is read while fewer than ``limit`` were claimed
    (a second worker would otherwise meet only the first one's page and stop)."""
    if not one_lock_per_row(session):
        return list(
            session.execute(
                stmt.limit(limit).with_for_update(skip_locked=True, key_share=True)
            ).scalars()
        )
    out: list[Any] = []
    offset = 0
    while len(out) < limit:
        picked = session.execute(stmt.with_only_columns(*keys).offset(offset).limit(limit)).all()
        for row in picked:
            match = [col == value for col, value in zip(keys, row, strict=True)]
            got = session.execute(
                stmt.where(*match).with_for_update(skip_locked=True, key_share=True)
            ).scalar_one_or_none()
            if got is not None:
                out.append(got)
                if len(out) == limit:
                    break
        if len(picked) < limit:
            break
        offset += limit
    return out
