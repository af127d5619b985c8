"""Placing the tables on a Citus cluster as ``qinqing.schema.distribution`` says (docs/scaling.md).

``QINQING_DISTRIBUTED=citus qinqing db upgrade`` migrates and then calls
``distribute`` in the same transaction: it fails or places every table. The
order comes from the foreign keys: reference tables first (parents before
children), then distributed tables (a co-location group's own table, e.g.
``persons``, before the tables co-located with it, parents before children).
Tables already placed are skipped, so a later ``db upgrade`` places only the
tables a new migration added; ``placing_new_tables`` places such a table the
moment it is created, before its foreign keys are added, since Citus refuses a
foreign key from a plain table to a distributed one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, ForeignKeyConstraint, Table, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import AddConstraint

from qinqing.kit.db import citus_version
from qinqing.schema.distribution import LOCAL, REFERENCE, TABLES, Distributed
from qinqing.schema.distribution_check import (
    MAP,
    Schema,
    TableMap,
    map_violations,
    read_schema,
)

MODES = ("citus",)


class DistributionError(Exception):
    """The tables cannot be placed; the message names every table and why."""


def wanted(value: str, database_url: str) -> bool:
    """Whether ``QINQING_DISTRIBUTED`` asks for Citus; a bad value or SQLite is an error."""
    value = value.strip()
    if not value:
        return False
    if value not in MODES:
        raise DistributionError(
            f"QINQING_DISTRIBUTED must be unset, empty or 'citus', not {value[:40]!r}"
        )
    if make_url(database_url).get_backend_name() != "postgresql":
        raise DistributionError(
            "QINQING_DISTRIBUTED=citus needs QINQING_DATABASE_URL to name a Citus "
            "coordinator (PostgreSQL with the citus extension), not SQLite"
        )
    return True


def require_citus(connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        raise DistributionError("QINQING_DISTRIBUTED=citus needs PostgreSQL with Citus")
    if citus_version(connection) is None:
        raise DistributionError(
            "QINQING_DISTRIBUTED=citus, but the database has no citus extension: "
            "CREATE EXTENSION citus on the coordinator and every worker, and add the "
            "workers (citus_add_node), or unset QINQING_DISTRIBUTED"
        )
    if not connection.execute(text("SELECT citus_is_coordinator()")).scalar():
        raise DistributionError(
            "QINQING_DISTRIBUTED=citus, but this database is not a Citus coordinator: "
            "QINQING_DATABASE_URL names a worker, or no nodes are registered yet "
            "(citus_set_coordinator_host, then citus_add_node for each worker)"
        )


def prepare(connection: Connection) -> None:
    """Check the server and set what placing needs, for this transaction only."""
    require_citus(connection)
    # Otherwise making regions a reference table turns every plain table whose
    # foreign key points at it into a Citus local table, which then can no
    # longer be distributed co-located.
    connection.execute(text("SET LOCAL citus.enable_local_reference_table_foreign_keys = off"))
    # A table with a foreign key to a reference table can be distributed only
    # before any parallel command in the transaction (a later migration's ALTER
    # of a distributed table is one): one connection per node throughout.
    connection.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))


@dataclass(frozen=True, slots=True)
class Placed:
    kind: str  # "reference" | "distributed" | "citus local" | "other"
    column: str | None
    colocation: int


def placements(connection: Connection) -> dict[str, Placed]:
    """What Citus has placed in the current schema (pg_dist_partition)."""
    rows = connection.execute(
        text(
            "SELECT c.relname, p.partmethod, p.repmodel, p.colocationid, "
            "CASE WHEN p.partmethod = 'h' "
            "     THEN column_to_column_name(p.logicalrelid, p.partkey) END "
            "FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid "
            "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        )
    )
    out = {}
    for name, method, repmodel, colocation, column in rows:
        if method == "h":
            kind = "distributed"
        elif method == "n":
            kind = "reference" if repmodel == "t" else "citus local"
        else:
            kind = "other"
        out[name] = Placed(kind, column, colocation)
    return out


def placement_problems(
    placed: dict[str, Placed], tables: TableMap = TABLES, *, complete: bool = True
) -> list[str]:
    """Where Citus's placement differs from the map (``complete``: every table placed)."""
    out = []
    for name, p in sorted(tables.items()):
        got = placed.get(name)
        if p is LOCAL:
            if got and got.kind != "citus local":
                out.append(f"{name}: coordinator-only in {MAP}, but Citus has it as {got.kind}")
            continue
        if got is None:
            if complete:
                out.append(f"{name}: not placed by Citus")
            continue
        if p is REFERENCE:
            if got.kind != "reference":
                out.append(f"{name}: a reference table in {MAP}, but Citus has it as {got.kind}")
            continue
        assert isinstance(p, Distributed)
        if got.kind != "distributed" or got.column != p.column:
            has = f"distributed by {got.column}" if got.kind == "distributed" else got.kind
            out.append(f"{name}: distributed by {p.column} in {MAP}, but Citus has it {has}")
            continue
        if p.colocate is not None:
            anchor = placed.get(p.colocate)
            if anchor and anchor.colocation != got.colocation:
                out.append(f"{name}: not co-located with {p.colocate}")
        else:
            shared = sorted(
                n
                for n, other in placed.items()
                if n != name and other.kind == "distributed" and other.colocation == got.colocation
            )
            if shared:
                out.append(f"{name}: a look-up table, but co-located with {', '.join(shared)}")
    return out


def dependencies(schema: Schema, tables: TableMap = TABLES) -> dict[str, set[str]]:
    """For each table to place: the tables that must be placed before it."""
    placeable = {n for n in schema if n in tables and tables[n] is not LOCAL}
    deps: dict[str, set[str]] = {}
    for name in placeable:
        need = {fk.ref_table for fk in schema[name].foreign_keys} & placeable
        p = tables[name]
        if isinstance(p, Distributed) and p.colocate is not None and p.colocate in placeable:
            need.add(p.colocate)
        need.discard(name)
        deps[name] = need
    return deps


def placement_order(schema: Schema, tables: TableMap = TABLES) -> list[str]:
    """Reference tables first, then distributed ones; each after what it depends on."""
    deps = dependencies(schema, tables)
    waiting = {n: set(d) for n, d in deps.items()}
    users: dict[str, set[str]] = {n: set() for n in deps}
    for name, need in deps.items():
        for other in need:
            users[other].add(name)

    def rank(name: str) -> tuple[int, str]:
        return (0 if tables[name] is REFERENCE else 1, name)

    ready = [rank(n) for n, need in waiting.items() if not need]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for user in sorted(users[name]):
            waiting[user].discard(name)
            if not waiting[user]:
                heapq.heappush(ready, rank(user))
    if len(order) < len(deps):
        stuck = sorted(set(deps) - set(order))
        raise DistributionError(
            "foreign keys form a cycle, no order to place these tables: " + ", ".join(stuck)
        )
    return order


def distribute(connection: Connection, tables: TableMap = TABLES) -> list[str]:
    """Place every table of the current schema as ``tables`` says, inside the caller's
    transaction; returns the tables placed now (empty when all were placed already).
    Tries every table, then raises one ``DistributionError`` listing each refusal."""
    prepare(connection)
    schema = read_schema(connection, only_visible=True)
    problems = map_violations(tables)
    problems += [
        f"{n}: table is not placed in {MAP}" for n in sorted(schema.keys() - tables.keys())
    ]
    problems += [
        f"{n}: placed in {MAP} but there is no such table"
        for n in sorted(tables.keys() - schema.keys())
    ]
    placed = placements(connection)
    problems += placement_problems(placed, tables, complete=False)
    if problems:
        raise DistributionError("cannot place the tables on Citus:\n" + _lines(problems))
    deps = dependencies(schema, tables)
    failed: dict[str, str] = {}
    done: list[str] = []
    for name in placement_order(schema, tables):
        if name in placed:
            continue
        blocked = sorted(deps[name] & failed.keys())
        if blocked:
            failed[name] = "not tried: needs " + ", ".join(blocked)
            continue
        try:
            with connection.begin_nested():
                _place(connection, name, tables)
        except DBAPIError as exc:
            failed[name] = _server_message(exc)
            continue
        done.append(name)
    # A coordinator-only table with a foreign key to a reference table must be a
    # Citus local table: the key is then checked against the coordinator's copy.
    # (Cascading: the coordinator-only tables its keys join come along.)
    for name in sorted(n for n in schema if tables.get(n) is LOCAL):
        if name in placements(connection) or not any(
            tables.get(fk.ref_table) is REFERENCE for fk in schema[name].foreign_keys
        ):
            continue
        try:
            with connection.begin_nested():
                connection.execute(
                    text(
                        "SELECT citus_add_local_table_to_metadata(CAST(:t AS regclass), "
                        "cascade_via_foreign_keys => true)"
                    ),
                    {"t": _qualified(connection, name)},
                )
        except DBAPIError as exc:
            failed[name] = _server_message(exc)
    if failed:
        raise DistributionError(
            f"Citus refused {len(failed)} of {len(deps)} tables:\n"
            + _lines(f"{n}: {why}" for n, why in failed.items())
        )
    problems = placement_problems(placements(connection), tables)
    if problems:
        raise DistributionError("placed, but not as the map says:\n" + _lines(problems))
    return done


def _place(connection: Connection, name: str, tables: TableMap) -> None:
    p = tables[name]
    if p is REFERENCE:
        connection.execute(
            text("SELECT create_reference_table(CAST(:t AS regclass))"),
            {"t": _qualified(connection, name)},
        )
        return
    assert isinstance(p, Distributed)
    # A group's own table and a look-up table start a new co-location group; without
    # 'none' Citus would co-locate them with any table whose column has the same type.
    with_ = "none" if p.colocate in (None, name) else _qualified(connection, p.colocate)
    connection.execute(
        text("SELECT create_distributed_table(CAST(:t AS regclass), :c, colocate_with => :w)"),
        {"t": _qualified(connection, name), "c": p.column, "w": with_},
    )


def _qualified(connection: Connection, name: str) -> str:
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    return f"{_ident(schema)}.{_ident(name)}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _server_message(exc: DBAPIError) -> str:
    """Citus's own words: message, detail and hint as the server sent them."""
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary:
        return str(exc.orig).strip()
    parts = [primary]
    for label in ("detail", "hint"):
        value = getattr(diag, f"message_{label}", None)
        if value:
            parts.append(f"{label.upper()}: {value}")
    return " — ".join(parts)


def _lines(items: Any) -> str:
    return "\n".join(f"  {item}" for item in items)


def is_distributed(connection: Connection) -> bool:
    """Whether Citus has placed any table of the current schema as reference or distributed."""
    return bool(
        connection.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_dist_partition p "
                "JOIN pg_class c ON c.oid = p.logicalrelid "
                "WHERE c.relnamespace = "
                "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
                "AND (p.partmethod = 'h' OR p.repmodel = 't'))"
            )
        ).scalar()
    )


@contextmanager
def placing_new_tables(connection: Connection, tables: TableMap = TABLES) -> Iterator[None]:
    """While migrations run on a cluster already placed: each table a migration creates
    (``op.create_table``) is created without its foreign keys, placed as the map says,
    and then given its foreign keys. A table missing from the map is an error at once.
    On a fresh database nothing is done here; ``distribute`` places everything after."""
    if not is_distributed(connection):
        yield
        return
    current = connection.execute(text("SELECT current_schema()")).scalar_one()
    deferred: dict[int, list[ForeignKeyConstraint]] = {}

    def mine(table: Table) -> bool:
        return table.schema in (None, current)

    def before_create(table: Table, conn: Connection, **kw: Any) -> None:
        if not mine(table):
            return
        p = tables.get(table.name)
        if p is None:
            raise DistributionError(
                f"{table.name}: a migration creates a table that is not placed in {MAP}"
            )
        if p is LOCAL:
            return
        fks = [c for c in table.foreign_key_constraints if not c.use_alter]
        for fk in fks:
            fk.use_alter = True  # CREATE TABLE leaves it out
        deferred[id(table)] = fks

    def after_create(table: Table, conn: Connection, **kw: Any) -> None:
        if not mine(table) or id(table) not in deferred:
            return
        fks = deferred.pop(id(table))
        try:
            with conn.begin_nested():
                _place(conn, table.name, tables)
        except DBAPIError as exc:
            raise DistributionError(
                f"{table.name}: Citus refused it: {_server_message(exc)}"
            ) from None
        for fk in fks:
            conn.execute(AddConstraint(fk))

    event.listen(Table, "before_create", before_create)
    event.listen(Table, "after_create", after_create)
    try:
        yield
    finally:
        event.remove(Table, "before_create", before_create)
        event.remove(Table, "after_create", after_create)
