"""Does the schema obey the distribution map? (qinqing.schema.distribution, docs/scaling.md)

``read_schema`` takes what matters from the PostgreSQL catalogue — columns, unique
keys (primary keys, unique constraints and unique indexes, partial ones too) and
foreign keys — and ``violations`` lists every way it breaks the rules Citus
enforces, all at once, so one run of the check shows the whole job. The same
rules run on a plain PostgreSQL in CI, long before anyone meets a Citus error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, text

from qinqing.schema.distribution import LOCAL, REFERENCE, TABLES, Distributed, Placement

MAP = "qinqing.schema.distribution.TABLES"


@dataclass(frozen=True, slots=True)
class Column:
    type: str
    not_null: bool = True


@dataclass(frozen=True, slots=True)
class UniqueKey:
    kind: str  # "primary key" | "unique constraint" | "unique index"
    name: str
    # Key columns in order; None for an expression.
    columns: tuple[str | None, ...]
    partial: bool = False

    def describe(self) -> str:
        cols = ", ".join(c or "(expression)" for c in self.columns)
        partial = " (partial)" if self.partial else ""
        return f"{self.kind} {self.name}{partial} ({cols})"


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]

    def describe(self, table: str) -> str:
        return (
            f"foreign key {self.name} {table}({', '.join(self.columns)}) -> "
            f"{self.ref_table}({', '.join(self.ref_columns)})"
        )


@dataclass(frozen=True, slots=True)
class Table:
    columns: dict[str, Column]
    unique: tuple[UniqueKey, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()


Schema = Mapping[str, Table]
TableMap = Mapping[str, Distributed | Placement]


_TABLES = (
    "SELECT c.oid, c.relname FROM pg_class c WHERE c.relnamespace = "
    "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
    "AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
)
_VISIBLE_TABLES = (
    "SELECT c.oid, c.relname FROM pg_class c WHERE c.relnamespace = "
    "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
    "AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
    "AND pg_catalog.citus_table_is_visible(c.oid)"
)


def read_schema(connection: Connection, *, only_visible: bool = False) -> dict[str, Table]:
    """The tables of the connection's current schema (ordinary and partitioned, not
    partitions). ``only_visible``: on a Citus node, leave out shards (the coordinator
    holds placements of reference tables, named like their table plus a shard id)."""
    names: dict[int, str] = {}
    columns: dict[str, dict[str, Column]] = {}
    for oid, name in connection.execute(text(_VISIBLE_TABLES if only_visible else _TABLES)):
        names[oid] = name
        columns[name] = {}
    oids = {"oids": list(names)}
    for relid, attname, typ, notnull in connection.execute(
        text(
            "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
            "FROM pg_attribute a WHERE a.attrelid = ANY(CAST(:oids AS oid[])) "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum"
        ),
        oids,
    ):
        columns[names[relid]][attname] = Column(typ, notnull)
    unique: dict[str, list[UniqueKey]] = {n: [] for n in columns}
    for relid, idxname, primary, is_constraint, partial, cols in connection.execute(
        text(
            "SELECT i.indrelid, ic.relname, i.indisprimary, "
            "EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid "
            "        AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')), "
            "i.indpred IS NOT NULL, "
            "ARRAY(SELECT a.attname FROM generate_series(0, i.indnkeyatts - 1) AS k(n) "
            "      LEFT JOIN pg_attribute a "
            "        ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n] ORDER BY k.n) "
            "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
            "WHERE i.indisunique AND i.indrelid = ANY(CAST(:oids AS oid[])) "
            "ORDER BY ic.relname"
        ),
        oids,
    ):
        kind = (
            "primary key" if primary else "unique constraint" if is_constraint else "unique index"
        )
        unique[names[relid]].append(UniqueKey(kind, idxname, tuple(cols), bool(partial)))
    fks: dict[str, list[ForeignKey]] = {n: [] for n in columns}
    for relid, conname, cols, ref_table, ref_cols in connection.execute(
        text(
            "SELECT con.conrelid, con.conname, "
            "ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n) "
            "      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum "
            "      ORDER BY k.n), "
            "(SELECT relname FROM pg_class WHERE oid = con.confrelid), "
            "ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n) "
            "      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum "
            "      ORDER BY k.n) "
            "FROM pg_constraint con "
            "WHERE con.contype = 'f' AND con.conrelid = ANY(CAST(:oids AS oid[])) "
            "ORDER BY con.conname"
        ),
        oids,
    ):
        fks[names[relid]].append(ForeignKey(conname, tuple(cols), ref_table, tuple(ref_cols)))
    return {
        name: Table(columns[name], tuple(unique[name]), tuple(fks[name]))
        for name in sorted(columns)
    }


def _same_group(a: str, pa: Distributed, b: str, pb: Distributed) -> bool:
    if a == b:
        return True
    return pa.colocate is not None and pa.colocate == pb.colocate


def map_violations(tables: TableMap = TABLES) -> list[str]:
    """The map itself: every co-location group is named after a table distributed in it."""
    out = []
    for name, p in tables.items():
        if isinstance(p, Distributed) and p.colocate is not None:
            anchor = tables.get(p.colocate)
            if not (isinstance(anchor, Distributed) and anchor.colocate == p.colocate):
                out.append(
                    f"{name}: co-location group {p.colocate!r} is not a table distributed "
                    f"in that group in {MAP}"
                )
    return out


def violations(schema: Schema, tables: TableMap = TABLES) -> list[str]:
    """Every way ``schema`` breaks the placement rules; empty when it obeys them."""
    out = map_violations(tables)
    for name in sorted(schema.keys() - tables.keys()):
        out.append(f"{name}: table is not placed in {MAP}")
    for name in sorted(tables.keys() - schema.keys()):
        out.append(f"{name}: placed in {MAP} but there is no such table")
    present = sorted(schema.keys() & tables.keys())
    for name in present:
        table, p = schema[name], tables[name]
        if isinstance(p, Distributed):
            out.extend(_key_violations(name, table, p))
        out.extend(_fk_violations(name, table, p, schema, tables))
    out.extend(_type_violations(schema, tables))
    return out


def _key_violations(name: str, table: Table, p: Distributed) -> list[str]:
    col = table.columns.get(p.column)
    if col is None:
        return [f"{name}: distribution column {p.column} does not exist"]
    out = []
    if not col.not_null:
        # Citus refuses a row whose distribution column is NULL.
        out.append(f"{name}: distribution column {p.column} is nullable")
    if not any(k.kind == "primary key" for k in table.unique):
        out.append(f"{name}: has no primary key (it must include {p.column})")
    for key in table.unique:
        if p.column not in key.columns:
            out.append(f"{name}: {key.describe()} does not include distribution column {p.column}")
    return out


def _fk_violations(
    name: str, table: Table, p: Distributed | Placement, schema: Schema, tables: TableMap
) -> list[str]:
    out = []
    for fk in table.foreign_keys:
        ref = tables.get(fk.ref_table)
        what = fk.describe(name)
        if ref is None:
            if fk.ref_table in schema:
                continue  # reported once, as an unplaced table
            out.append(f"{name}: {what} points to a table outside the schema")
        elif isinstance(p, Distributed):
            if ref is REFERENCE:
                continue
            if ref is LOCAL:
                out.append(f"{name}: {what} points from a distributed to a coordinator-only table")
            elif isinstance(ref, Distributed):
                if not _same_group(name, p, fk.ref_table, ref):
                    if p.colocate is None:
                        out.append(
                            f"{name}: look-up table has {what} to distributed table {fk.ref_table}"
                        )
                    else:
                        out.append(
                            f"{name}: {what} joins tables of different co-location groups "
                            f"({p.colocate!r} and {ref.colocate!r})"
                        )
                elif (p.column, ref.column) not in zip(fk.columns, fk.ref_columns, strict=True):
                    out.append(
                        f"{name}: {what} does not map {name}.{p.column} onto "
                        f"{fk.ref_table}.{ref.column}"
                    )
        else:
            kind = "reference" if p is REFERENCE else "coordinator-only"
            if isinstance(ref, Distributed):
                out.append(f"{name}: {what} points from a {kind} table to a distributed table")
            elif p is REFERENCE and ref is LOCAL:
                out.append(f"{name}: {what} points from a reference to a coordinator-only table")
    return out


def _type_violations(schema: Schema, tables: TableMap) -> list[str]:
    """Co-located tables hash the same type, or Citus will not co-locate them."""
    out = []
    for name, p in sorted(tables.items()):
        if not isinstance(p, Distributed) or p.colocate is None or p.colocate == name:
            continue
        anchor = tables.get(p.colocate)
        if not isinstance(anchor, Distributed) or name not in schema or p.colocate not in schema:
            continue
        mine = schema[name].columns.get(p.column)
        theirs = schema[p.colocate].columns.get(anchor.column)
        if mine and theirs and mine.type != theirs.type:
            out.append(
                f"{name}: distribution column {p.column} is {mine.type}, but "
                f"{p.colocate}.{anchor.column} is {theirs.type}"
            )
    return out
