"""The distribution checker and the placement order on tiny hand-made schemas, so
their logic is tested apart from the real schema (which test_distribution_schema
checks): a good schema passes, a bad one yields each violation once."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text

from qinqing.kit.db import make_engine
from qinqing.schema.citus import DistributionError, placement_order, wanted
from qinqing.schema.distribution import LOCAL, REFERENCE, Distributed, Placement
from qinqing.schema.distribution_check import (
    Column,
    ForeignKey,
    Table,
    UniqueKey,
    read_schema,
    violations,
)
from support.databases import PG_URL, private_schema, with_options

MAP: dict[str, Distributed | Placement] = {
    "regions": REFERENCE,
    "clients": REFERENCE,
    "audit": LOCAL,
    "persons": Distributed("id"),
    "links": Distributed("holder_id"),
    "link_members": Distributed("member_id"),
    "accounts": Distributed("person_id"),
    "entries": Distributed("person_id"),
    "logins": Distributed("login_index", colocate=None),
}


def table(
    *columns: str,
    pk: tuple[str, ...],
    unique: tuple[UniqueKey, ...] = (),
    fks: tuple[ForeignKey, ...] = (),
    nullable: tuple[str, ...] = (),
    types: dict[str, str] | None = None,
) -> Table:
    types = types or {}
    cols = {c: Column(types.get(c, "bigint"), c not in nullable) for c in columns}
    keys = (UniqueKey("primary key", "pk", pk), *unique) if pk else unique
    return Table(cols, keys, fks)


def fk(name: str, cols: tuple[str, ...], ref: str, ref_cols: tuple[str, ...]) -> ForeignKey:
    return ForeignKey(name, cols, ref, ref_cols)


def good_schema() -> dict[str, Table]:
    return {
        "regions": table("code", pk=("code",), types={"code": "text"}),
        "clients": table(
            "id",
            "region_code",
            pk=("id",),
            fks=(fk("fk_c_r", ("region_code",), "regions", ("code",)),),
        ),
        "audit": table(
            "seq",
            "region_code",
            pk=("seq",),
            fks=(fk("fk_a_r", ("region_code",), "regions", ("code",)),),
        ),
        "persons": table(
            "id",
            "region_code",
            pk=("id",),
            fks=(fk("fk_p_r", ("region_code",), "regions", ("code",)),),
        ),
        "links": table(
            "holder_id",
            "id",
            "member_id",
            "relation",
            "client_id",
            pk=("holder_id", "id"),
            unique=(UniqueKey("unique index", "uq_one_spouse", ("holder_id", "relation"), True),),
            fks=(
                fk("fk_l_h", ("holder_id",), "persons", ("id",)),
                fk("fk_l_c", ("client_id",), "clients", ("id",)),
            ),
        ),
        "link_members": table(
            "member_id",
            "holder_id",
            "link_id",
            pk=("member_id", "holder_id", "link_id"),
            fks=(fk("fk_lm_m", ("member_id",), "persons", ("id",)),),
        ),
        "accounts": table(
            "person_id",
            "id",
            pk=("person_id", "id"),
            fks=(fk("fk_ac_p", ("person_id",), "persons", ("id",)),),
        ),
        # A two-column key: the distribution column maps onto the referenced one.
        "entries": table(
            "person_id",
            "id",
            "account_id",
            pk=("id", "person_id"),
            fks=(fk("fk_e_a", ("account_id", "person_id"), "accounts", ("id", "person_id")),),
        ),
        "logins": table(
            "login_index",
            "person_id",
            pk=("login_index",),
            types={"login_index": "text"},
        ),
    }


def test_a_good_schema_has_no_violations() -> None:
    assert violations(good_schema(), MAP) == []


def test_a_bad_schema_yields_every_violation_once() -> None:
    schema = good_schema()
    schema["stray"] = table("id", pk=("id",))
    del schema["clients"]
    schema["regions"] = table(
        "code",
        "person_id",
        "seq",
        pk=("code",),
        fks=(
            fk("fk_r_p", ("person_id",), "persons", ("id",)),
            fk("fk_r_a", ("seq",), "audit", ("seq",)),
        ),
    )
    schema["audit"] = table(
        "seq", "person_id", pk=("seq",), fks=(fk("fk_a_p", ("person_id",), "persons", ("id",)),)
    )
    schema["persons"] = table(
        "id",
        "id_number_index",
        "email",
        pk=("id",),
        unique=(
            UniqueKey("unique constraint", "uq_idn", ("id_number_index",)),
            UniqueKey("unique index", "uq_email", (None,)),
        ),
    )
    schema["links"] = table(
        "holder_id",
        "id",
        "member_id",
        "pair_key",
        pk=("id",),
        nullable=("holder_id",),
        unique=(UniqueKey("unique index", "uq_pair", ("pair_key",), True),),
        fks=(fk("fk_l_m", ("member_id",), "persons", ("id",)),),
    )
    schema["link_members"] = table("holder_id", "link_id", pk=("holder_id", "link_id"))
    schema["accounts"] = table(
        "person_id",
        "id",
        "seq",
        "login_index",
        pk=(),
        types={"person_id": "text"},
        fks=(
            fk("fk_ac_a", ("seq",), "audit", ("seq",)),
            fk("fk_ac_l", ("login_index",), "logins", ("login_index",)),
        ),
    )
    schema["logins"] = table(
        "login_index",
        "person_id",
        pk=("login_index",),
        fks=(fk("fk_lo_p", ("person_id",), "persons", ("id",)),),
    )
    tables = {**MAP, "orphans": Distributed("person_id", colocate="nobody")}
    schema["orphans"] = table("person_id", pk=("person_id",))
    m = "qinqing.schema.distribution.TABLES"
    assert violations(schema, tables) == [
        f"orphans: co-location group 'nobody' is not a table distributed in that group in {m}",
        f"stray: table is not placed in {m}",
        f"clients: placed in {m} but there is no such table",
        "accounts: has no primary key (it must include person_id)",
        "accounts: foreign key fk_ac_a accounts(seq) -> audit(seq) points from a distributed "
        "to a coordinator-only table",
        "accounts: foreign key fk_ac_l accounts(login_index) -> logins(login_index) joins "
        "tables of different co-location groups ('persons' and None)",
        "audit: foreign key fk_a_p audit(person_id) -> persons(id) points from a "
        "coordinator-only table to a distributed table",
        "link_members: distribution column member_id does not exist",
        "links: distribution column holder_id is nullable",
        "links: primary key pk (id) does not include distribution column holder_id",
        "links: unique index uq_pair (partial) (pair_key) does not include distribution "
        "column holder_id",
        "links: foreign key fk_l_m links(member_id) -> persons(id) does not map "
        "links.holder_id onto persons.id",
        "logins: look-up table has foreign key fk_lo_p logins(person_id) -> persons(id) "
        "to distributed table persons",
        "persons: unique constraint uq_idn (id_number_index) does not include distribution "
        "column id",
        "persons: unique index uq_email ((expression)) does not include distribution column id",
        "regions: foreign key fk_r_p regions(person_id) -> persons(id) points from a "
        "reference table to a distributed table",
        "regions: foreign key fk_r_a regions(seq) -> audit(seq) points from a reference to "
        "a coordinator-only table",
        "accounts: distribution column person_id is text, but persons.id is bigint",
    ]


def test_placement_order_reference_tables_then_parents_before_children() -> None:
    order = placement_order(good_schema(), MAP)
    assert order[:2] == ["regions", "clients"]  # clients' key points at regions
    assert "audit" not in order  # coordinator-only: not placed
    assert order.index("persons") < min(
        order.index(t) for t in ("links", "link_members", "accounts", "entries")
    )
    assert order.index("accounts") < order.index("entries")
    assert sorted(order) == sorted(set(MAP) - {"audit"})


def test_placement_order_puts_the_group_table_first_without_a_foreign_key() -> None:
    schema = good_schema()
    # No key to persons, and first by name, yet co-located with it: persons comes first.
    schema["aaa"] = table("person_id", "id", pk=("person_id", "id"))
    order = placement_order(schema, {**MAP, "aaa": Distributed("person_id")})
    assert order.index("persons") < order.index("aaa")


def test_placement_order_refuses_a_cycle() -> None:
    schema = good_schema()
    schema["persons"] = table(
        "id",
        "account_id",
        pk=("id",),
        fks=(fk("fk_p_ac", ("id", "account_id"), "accounts", ("person_id", "id")),),
    )
    with pytest.raises(
        DistributionError, match=r"cycle, no order to place these tables: accounts, .*persons"
    ):
        placement_order(schema, MAP)


@pytest.mark.parametrize(
    ("value", "url", "expected"),
    [
        ("", "sqlite:///x.sqlite3", False),
        ("  ", "postgresql+psycopg://h/db", False),
        ("citus", "postgresql+psycopg://h/db", True),
    ],
)
def test_wanted(value: str, url: str, expected: bool) -> None:
    assert wanted(value, url) is expected


def test_wanted_refuses_other_values_and_sqlite() -> None:
    with pytest.raises(DistributionError, match="unset, empty or 'citus', not 'yes'"):
        wanted("yes", "postgresql+psycopg://h/db")
    with pytest.raises(DistributionError, match="not SQLite"):
        wanted("citus", "sqlite:///x.sqlite3")


@pytest.fixture
def tiny_pg() -> Iterator[Connection]:
    assert PG_URL
    with private_schema(PG_URL, f"qq_check_{os.getpid()}") as schema:
        engine = make_engine(with_options(PG_URL, search_path=schema), pool_size=1)
        with engine.connect() as conn:
            try:
                yield conn
            finally:
                conn.rollback()
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="set QINQING_TEST_DATABASE_URL to run it")
def test_read_schema_takes_keys_and_foreign_keys_from_the_catalogue(tiny_pg: Connection) -> None:
    for ddl in (
        "CREATE TABLE persons (id bigint PRIMARY KEY, email text, "
        "  idn text CONSTRAINT uq_idn UNIQUE)",
        "CREATE UNIQUE INDEX uq_email ON persons (lower(email))",
        "CREATE TABLE accounts (person_id bigint NOT NULL REFERENCES persons(id), "
        "  id bigint, note text, dropped int, PRIMARY KEY (id, person_id))",
        "ALTER TABLE accounts DROP COLUMN dropped",
        "CREATE UNIQUE INDEX uq_note ON accounts (person_id, note) INCLUDE (id) "
        "  WHERE note IS NOT NULL",
        "CREATE TABLE entries (person_id bigint, account_id bigint, "
        "  CONSTRAINT fk_e_a FOREIGN KEY (account_id, person_id) "
        "  REFERENCES accounts (id, person_id))",
    ):
        tiny_pg.execute(text(ddl))
    schema = read_schema(tiny_pg)
    assert sorted(schema) == ["accounts", "entries", "persons"]
    assert schema["accounts"].columns == {
        "person_id": Column("bigint", True),
        "id": Column("bigint", True),
        "note": Column("text", False),
    }
    assert schema["persons"].unique == (
        UniqueKey("primary key", "persons_pkey", ("id",)),
        UniqueKey("unique index", "uq_email", (None,)),
        UniqueKey("unique constraint", "uq_idn", ("idn",)),
    )
    # INCLUDE columns are not part of the key.
    assert schema["accounts"].unique == (
        UniqueKey("primary key", "accounts_pkey", ("id", "person_id")),
        UniqueKey("unique index", "uq_note", ("person_id", "note"), True),
    )
    assert schema["accounts"].foreign_keys == (
        ForeignKey("accounts_person_id_fkey", ("person_id",), "persons", ("id",)),
    )
    assert schema["entries"].foreign_keys == (
        ForeignKey("fk_e_a", ("account_id", "person_id"), "accounts", ("id", "person_id")),
    )
    assert schema["entries"].unique == ()
    tables = {
        "persons": Distributed("id"),
        "accounts": Distributed("person_id"),
        "entries": Distributed("person_id"),
    }
    assert violations(schema, tables) == [
        "entries: distribution column person_id is nullable",
        "entries: has no primary key (it must include person_id)",
        "persons: unique index uq_email ((expression)) does not include distribution column id",
        "persons: unique constraint uq_idn (idn) does not include distribution column id",
    ]
