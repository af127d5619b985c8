"""On a Citus coordinator, after `QINQING_DISTRIBUTED=citus qinqing db upgrade`, every
table is placed as qinqing.schema.distribution says: reference or distributed, by which
column, and in which co-location group (read from pg_dist_partition here, not
through the code that placed them)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy import text

from qinqing.kit.db import make_engine
from qinqing.schema.distribution import LOCAL, REFERENCE, TABLES, Distributed
from support.databases import CITUS_URL, NO_CITUS


@pytest.mark.citus
@pytest.mark.skipif(not CITUS_URL, reason=NO_CITUS)
def test_every_table_is_placed_as_the_map_says(citus_migrated: str) -> None:
    engine = make_engine(citus_migrated, pool_size=1)
    try:
        with engine.connect() as conn:
            present = set(
                conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                ).scalars()
            )
            rows = conn.execute(
                # Not the citus_tables view: it lives in schema public, off our search_path.
                text(
                    "SELECT c.relname, CASE WHEN p.partmethod = 'h' THEN 'distributed' "
                    "  WHEN p.repmodel = 't' THEN 'reference' ELSE 'local' END, "
                    "column_to_column_name(p.logicalrelid, p.partkey), p.colocationid "
                    "FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid "
                    "WHERE c.relnamespace = "
                    "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
                )
            ).all()
    finally:
        engine.dispose()
    placed = {name: (kind, column, group) for name, kind, column, group in rows}
    wrong = [f"{n}: a table not in the map" for n in sorted(present - TABLES.keys())]
    wrong += [f"{n}: in the map, not in the database" for n in sorted(TABLES.keys() - present)]
    groups: dict[int, set[str]] = defaultdict(set)
    for name, (_, _, group) in placed.items():
        groups[group].add(name)
    for name, p in sorted(TABLES.items()):
        kind, column, group = placed.get(name, (None, None, None))
        if p is LOCAL:
            if kind not in (None, "local"):
                wrong.append(f"{name}: coordinator-only, but {kind}")
        elif p is REFERENCE:
            if kind != "reference":
                wrong.append(f"{name}: reference, but {kind}")
        else:
            assert isinstance(p, Distributed)
            if (kind, column) != ("distributed", p.column):
                wrong.append(f"{name}: distributed by {p.column}, but {kind} by {column}")
            elif p.colocate is not None:
                if group != placed.get(p.colocate, (None, None, None))[2]:
                    wrong.append(f"{name}: not in the co-location group of {p.colocate}")
            elif groups[group] != {name}:
                wrong.append(f"{name}: a look-up table sharing its group with {groups[group]}")
    assert not wrong, "\n".join(wrong)
