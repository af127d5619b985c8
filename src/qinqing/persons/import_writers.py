"""Storing validated persons, chunk by chunk: ``COPY`` through a staging table on
PostgreSQL, claims in the look-up table then ``COPY`` on a Citus coordinator,
``executemany`` on SQLite. Each returns the lines of persons already registered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import psycopg
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from qinqing.persons.import_rows import STAGED_COLUMNS, StagedRow
from qinqing.persons.models import Person, PersonIdNumber

_SQLITE_LOOKUP_BATCH = 500


class Writer(Protocol):
    def write(self, rows: Sequence[StagedRow]) -> list[int]:
        """Store a chunk of validated rows; return the lines of persons that already existed."""


_STAGING = "qinqing_person_import"


def _psycopg_connection(session: Session) -> psycopg.Connection[Any]:
    raw = session.connection().connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("the PostgreSQL import needs the psycopg 3 driver")
    return raw


class PostgresWriter:
    """COPY into a temporary staging table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING."""

    def __init__(self, session: Session, now: datetime) -> None:
        self._now = now
        self._conn = _psycopg_connection(session)
        with self._conn.cursor() as cur:
            cur.execute(
                f"""
                CREATE TEMPORARY TABLE {_STAGING} (
                    line integer NOT NULL,
                    id uuid NOT NULL,
                    id_number_index varchar(64) NOT NULL,
                    id_number_cipher bytea NOT NULL,
                    name varchar(64) NOT NULL,
                    region_code varchar(6) NOT NULL,
                    scheme varchar(16) NOT NULL,
                    status varchar(16) NOT NULL,
                    birth_date date NOT NULL,
                    sex varchar(1) NOT NULL,
                    phone_index varchar(64),
                    phone_cipher bytea
                ) ON COMMIT DROP
                """
            )
        self._first = True

    def write(self, rows: Sequence[StagedRow]) -> list[int]:
        columns = ", ".join(STAGED_COLUMNS)
        moved = ", ".join(STAGED_COLUMNS[1:])
        with self._conn.cursor() as cur:
            if not self._first:
                cur.execute(f"TRUNCATE {_STAGING}")
            self._first = False
            with cur.copy(f"COPY {_STAGING} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            # The look-up table is where an ID number is unique: only the rows that
            # claim their number there become persons.
            cur.execute(
                "WITH claimed AS ("  # noqa: S608
                "INSERT INTO person_id_numbers (id_number_index, person_id) "
                f"SELECT id_number_index, id FROM {_STAGING} "
                "ON CONFLICT (id_number_index) DO NOTHING RETURNING person_id) "
                f"INSERT INTO persons ({moved}, created_at, updated_at) "
                f"SELECT {', '.join('s.' + c for c in STAGED_COLUMNS[1:])}, %(now)s, %(now)s "
                f"FROM {_STAGING} s JOIN claimed c ON c.person_id = s.id",
                {"now": self._now},
            )
            if cur.rowcount == len(rows):
                return []
            cur.execute(
                f"SELECT s.line FROM {_STAGING} s "  # noqa: S608
                "WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.id = s.id)"
            )
            return [line for (line,) in cur.fetchall()]


class CitusWriter:
    """A Citus coordinator: no staging table, since Citus cannot join a temporary
    table of the coordinator with the distributed ``persons``.

    The chunk's ID numbers are claimed in the look-up table first, from arrays
    (``unnest``) with ``ON CONFLICT (id_number_index) DO NOTHING RETURNING``: the
    look-up table is where an ID number is unique, so this is as race-free as the
    staging path. Then only the claimed rows are ``COPY``-ed into ``persons``
    (Citus sends each row to its shard). Both in the import's transaction.
    """

    def __init__(self, session: Session, now: datetime) -> None:
        self._now = now
        self._conn = _psycopg_connection(session)

    def write(self, rows: Sequence[StagedRow]) -> list[int]:
        with self._conn.cursor() as cur:
            cur.execute(
                "INSERT INTO person_id_numbers (id_number_index, person_id) "
                "SELECT * FROM unnest(%s::varchar[], %s::uuid[]) "
                "ON CONFLICT (id_number_index) DO NOTHING RETURNING person_id",
                ([r[2] for r in rows], [r[1] for r in rows]),
            )
            claimed = {person_id for (person_id,) in cur.fetchall()}
            if not claimed:
                return [r[0] for r in rows]
            columns = ", ".join(STAGED_COLUMNS[1:])
            with cur.copy(f"COPY persons ({columns}, created_at, updated_at) FROM STDIN") as copy:
                for r in rows:
                    if r[1] in claimed:
                        copy.write_row((*r[1:], self._now, self._now))
        return [r[0] for r in rows if r[1] not in claimed]


class SqlAlchemyWriter:
    """SQLite (and any other database): look up existing persons, insert the rest.

    SQLite lets one writer in at a time (``BEGIN IMMEDIATE``), so nobody can
    register the same person between the look-up and the insert.
    """

    def __init__(self, session: Session, now: datetime) -> None:
        self._session = session
        self._now = now

    def write(self, rows: Sequence[StagedRow]) -> list[int]:
        existing: set[str] = set()
        for i in range(0, len(rows), _SQLITE_LOOKUP_BATCH):
            keys = [r[2] for r in rows[i : i + _SQLITE_LOOKUP_BATCH]]
            existing.update(
                self._session.execute(
                    select(PersonIdNumber.id_number_index).where(
                        PersonIdNumber.id_number_index.in_(keys)
                    )
                ).scalars()
            )
        fresh = [
            {
                **dict(zip(STAGED_COLUMNS[1:], r[1:], strict=True)),
                "created_at": self._now,
                "updated_at": self._now,
            }
            for r in rows
            if r[2] not in existing
        ]
        if fresh:
            conn = self._session.connection()
            conn.execute(insert(Person), fresh)
            conn.execute(
                insert(PersonIdNumber),
                [{"id_number_index": r["id_number_index"], "person_id": r["id"]} for r in fresh],
            )
        return [r[0] for r in rows if r[2] in existing]
