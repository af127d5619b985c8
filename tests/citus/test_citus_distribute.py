"""qinqing.schema.citus on a real coordinator, on tiny schemas with maps of their own: the
order that avoids Citus's traps, all-or-nothing with every refusal named, idempotent
runs, and a table a later migration adds to a cluster already placed.

Collected only when QINQING_TEST_CITUS_URL is set (tests/conftest.py)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from qinqing.kit.db import make_engine
from qinqing.schema.citus import (
    DistributionError,
    Placed,
    distribute,
    placements,
    placing_new_tables,
)
from qinqing.schema.distribution import LOCAL, REFERENCE, Distributed, Placement
from support.databases import CITUS_URL, private_schema, with_options

pytestmark = pytest.mark.citus

_n = itertools.count()

MAP: dict[str, Distributed | Placement] = {
    "regions": REFERENCE,
    "clients": REFERENCE,
    "audit": LOCAL,
    "persons": Distributed("id"),
    "links": Distributed("holder_id"),
    "logins": Distributed("login_index", colocate=None),
}

SCHEMA = (
    "CREATE TABLE regions (code text PRIMARY KEY)",
    "CREATE TABLE clients (id bigint PRIMARY KEY, region_code text REFERENCES regions)",
    "CREATE TABLE persons (id bigint PRIMARY KEY, region_code text REFERENCES regions)",
    "CREATE TABLE links (holder_id bigint NOT NULL REFERENCES persons, id bigint, "
    "  client_id bigint REFERENCES clients, PRIMARY KEY (holder_id, id))",
    "CREATE TABLE logins (login_index text PRIMARY KEY, region_code text REFERENCES regions)",
    "CREATE TABLE audit (seq bigint PRIMARY KEY, region_code text REFERENCES regions)",
)


@pytest.fixture
def cluster() -> Iterator[Engine]:
    """A private schema on the coordinator, two shards per table."""
    assert CITUS_URL
    with private_schema(CITUS_URL, f"qq_place_{os.getpid()}_{next(_n)}") as schema:
        engine = make_engine(
            with_options(CITUS_URL, search_path=schema, **{"citus.shard_count": "2"}),
            pool_size=1,
        )
        yield engine
        engine.dispose()


def _create(conn: Connection, *ddl: str) -> None:
    for statement in ddl:
        conn.execute(text(statement))


def _placed(engine: Engine) -> dict[str, Placed]:
    with engine.connect() as conn:
        return placements(conn)


def test_reference_tables_first_do_not_turn_their_children_into_local_tables(
    cluster: Engine,
) -> None:
    with cluster.begin() as conn:
        _create(conn, *SCHEMA)
        done = distribute(conn, MAP)
    assert done == ["regions", "clients", "logins", "persons", "links"]
    placed = _placed(cluster)
    assert {n: (p.kind, p.column) for n, p in placed.items()} == {
        "regions": ("reference", None),
        "clients": ("reference", None),
        "persons": ("distributed", "id"),
        "links": ("distributed", "holder_id"),
        "logins": ("distributed", "login_index"),
        # Coordinator-only, but a Citus local table: its key to regions needs it.
        "audit": ("citus local", None),
    }
    assert placed["links"].colocation == placed["persons"].colocation
    assert placed["logins"].colocation != placed["persons"].colocation
    with cluster.begin() as conn:
        conn.execute(text("INSERT INTO regions VALUES ('150600')"))
        conn.execute(text("INSERT INTO audit VALUES (1, '150600')"))
        conn.execute(text("INSERT INTO persons VALUES (7, '150600')"))
        conn.execute(text("INSERT INTO links VALUES (7, 1, NULL)"))
    # The foreign keys still hold, on every placement.
    for bad in ("INSERT INTO audit VALUES (2, '999999')", "INSERT INTO links VALUES (8, 1, NULL)"):
        with pytest.raises(IntegrityError), cluster.begin() as conn:
            conn.execute(text(bad))


def test_citus_default_would_turn_children_into_local_tables(cluster: Engine) -> None:
    """Why qinqing.schema.citus.prepare switches it off: the trap, as Citus 13 behaves."""
    with cluster.connect() as conn:  # rolled back on close
        _create(conn, *SCHEMA)
        conn.execute(text("SELECT create_reference_table('regions')"))
        assert placements(conn)["persons"].kind == "citus local"


def test_a_second_run_places_nothing_and_a_later_table_is_placed(cluster: Engine) -> None:
    with cluster.begin() as conn:
        _create(conn, *SCHEMA)
        distribute(conn, MAP)
    tables = {**MAP, "notes": Distributed("person_id"), "kinds": REFERENCE}
    with cluster.begin() as conn:
        assert distribute(conn, MAP) == []
        # What `db upgrade` does with a later migration: Citus refuses a plain table
        # with a key to a distributed one, so the table is placed before its keys.
        with placing_new_tables(conn, tables):
            op = Operations(MigrationContext.configure(conn))
            op.create_table(
                "kinds",
                sa.Column("code", sa.Text, primary_key=True),
                sa.Column("region_code", sa.Text, sa.ForeignKey("regions.code")),
            )
            op.create_table(
                "notes",
                sa.Column("person_id", sa.BigInteger, sa.ForeignKey("persons.id"), nullable=False),
                sa.Column("id", sa.BigInteger, nullable=False),
                sa.Column("kind", sa.Text, sa.ForeignKey("kinds.code")),
                sa.PrimaryKeyConstraint("person_id", "id"),
            )
        assert distribute(conn, tables) == []
        keys = conn.execute(
            text(
                "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid IN ('notes'::regclass, 'kinds'::regclass)"
            )
        ).all()
    assert sorted(keys) == [("kinds", "regions"), ("notes", "kinds"), ("notes", "persons")]
    placed = _placed(cluster)
    assert (placed["notes"].kind, placed["notes"].column) == ("distributed", "person_id")
    assert placed["notes"].colocation == placed["persons"].colocation
    assert placed["kinds"].kind == "reference"


def test_a_new_table_missing_from_the_map_is_refused_by_name(cluster: Engine) -> None:
    with cluster.begin() as conn:
        _create(conn, *SCHEMA)
        distribute(conn, MAP)
    with (
        pytest.raises(DistributionError, match="stray: a migration creates a table that is not"),
        cluster.begin() as conn,
        placing_new_tables(conn, MAP),
    ):
        Operations(MigrationContext.configure(conn)).create_table(
            "stray", sa.Column("id", sa.BigInteger, primary_key=True)
        )


def test_tables_missing_from_the_map_or_the_database_are_named(cluster: Engine) -> None:
    with cluster.begin() as conn:
        _create(conn, *SCHEMA, "CREATE TABLE stray (id bigint PRIMARY KEY)")
        tables = {**MAP, "ghost": REFERENCE}
        with pytest.raises(DistributionError) as caught:
            distribute(conn, tables)
    assert str(caught.value).splitlines()[1:] == [
        "  stray: table is not placed in qinqing.schema.distribution.TABLES",
        "  ghost: placed in qinqing.schema.distribution.TABLES but there is no such table",
    ]


def test_every_refusal_is_named_in_citus_words_and_nothing_is_placed(cluster: Engine) -> None:
    with cluster.begin() as conn:
        _create(
            conn,
            *SCHEMA,
            "ALTER TABLE persons ADD COLUMN idn text CONSTRAINT uq_idn UNIQUE",
            "ALTER TABLE logins ADD COLUMN person_id bigint, ADD COLUMN n int UNIQUE",
        )
    with pytest.raises(DistributionError) as caught, cluster.begin() as conn:
        distribute(conn, MAP)
    message = str(caught.value)
    assert message.startswith("Citus refused 3 of 5 tables:\n")
    assert '  logins: cannot create constraint on "logins" — DETAIL: Distributed relations' in (
        message
    )
    assert '  persons: cannot create constraint on "persons" — DETAIL:' in message
    assert "  links: not tried: needs persons" in message
    assert _placed(cluster) == {}


def test_a_table_placed_otherwise_is_an_error(cluster: Engine) -> None:
    with cluster.begin() as conn:
        _create(conn, *SCHEMA)
        conn.execute(text("SET LOCAL citus.enable_local_reference_table_foreign_keys = off"))
        conn.execute(text("SELECT create_reference_table('regions')"))
        conn.execute(text("SELECT create_reference_table('logins')"))
    with (
        pytest.raises(DistributionError, match=r"logins: distributed by login_index in .* but"),
        cluster.begin() as conn,
    ):
        distribute(conn, MAP)
