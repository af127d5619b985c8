"""Bulk import of insured persons from CSV (docs/guide.md §3.1, §5.2 ``persons import``).

The file has a header row, exactly ``id_number,name,region_code,scheme,status,phone``
(optionally followed by ``,guardians``: a minor's registered guardians' ID numbers,
``;``-separated)
(UTF-8 with an optional BOM, or GBK when asked for), then one person per row; a row
may not exceed ``ROW_MAX_BYTES``. A file that is not UTF-8 but reads as GBK (what
Excel saves as "CSV" on Chinese Windows) is refused as a whole, before anything is
imported, with a message that says so. Every row is validated on
its own; a refused row is reported with its physical line number, a stable
code and an English reason that never repeats a value from the file (a shifted
column could put an ID number or a phone into any field).

Design for throughput (1,000,000 rows in under two minutes on two cores, see
``docs/benchmarks.md``):

* the file is streamed and handled in chunks; validation and the vault work
  (blind index + AES-GCM) per row cost about 12 µs, so one process suffices;
* on PostgreSQL each chunk is ``COPY``-ed into a temporary staging table and
  moved with one ``INSERT ... SELECT ... ON CONFLICT (id_number_index) DO
  NOTHING``. The rows that were skipped are the persons already registered
  (compared and changed as below); they are found by the ids we generated,
  which is race-free inside our own transaction;
* on a Citus coordinator, which cannot join a temporary table with the
  distributed ``persons``, the chunk's ID numbers are claimed in the look-up
  table from arrays (same ``ON CONFLICT``), and only the claimed rows are
  ``COPY``-ed into ``persons``;
* on SQLite (one writer at a time, ``BEGIN IMMEDIATE``) existing persons are
  looked up first and the rest inserted with ``executemany``;
* a background thread writes chunk *n* while the main thread prepares chunk
  *n + 1*, so the database and Python overlap.

Rows of persons already registered (matched by the ID number's blind index) are
not refused: a re-import applies what changed of their status, scheme, region,
phone and guardians (``persons.import_changes``). Each chunk's known rows are
compared with the stored persons as the chunk is written; the differing ones are
applied after the last chunk, in one step that takes its locks in the global
order and announces the changes (``persons.events``) so that the parts above
react in the same transaction (links that end, resident contributions noted).
The same file twice changes nothing the second time.

The whole import is one transaction, together with its audit entries (one per
changed person, then the import's own): either every taken row, every change
and the audit entries are committed, or nothing is. A person is one row of
``persons``, so no person is ever half-written.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from qinqing.audit.actor import Actor
from qinqing.audit.service import Pending, record, record_many
from qinqing.kit.db import citus_version
from qinqing.kit.errors import DomainError
from qinqing.persons import import_file
from qinqing.persons.events import PersonChanged
from qinqing.persons.import_changes import Wanted, apply, wanted_changes
from qinqing.persons.import_file import (
    DEFAULT_CHUNK_ROWS,
    ENCODINGS,
    SNIFF_BYTES,
    CsvSource,
    check_header,
    looks_like_gbk,
)
from qinqing.persons.import_rows import Refusal, RowValidator, StagedRow, refusal
from qinqing.persons.import_writers import CitusWriter, PostgresWriter, SqlAlchemyWriter, Writer
from qinqing.persons.models import PersonGuardian
from qinqing.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """``taken``: the valid rows, new persons and known ones alike; ``created``: the
    new persons among them; ``changed``: the known persons whose data changed."""

    taken: int
    refused: list[Refusal] = field(default_factory=list)
    changed: list[PersonChanged] = field(default_factory=list)
    created: int = 0

    @property
    def rows(self) -> int:
        return self.taken + len(self.refused)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape of docs/guide.md §5: ``{"taken": N, "refused": [{line,
        code, reason}], "changed": [{line, fields: {field: [old, new]}}]}``."""
        return {
            "taken": self.taken,
            "refused": [r.as_dict() for r in self.refused],
            "changed": [
                {"line": c.line, "fields": {k: list(v) for k, v in c.fields.items()}}
                for c in self.changed
            ],
        }


ProgressCallback = Callable[[int, int], None]


def import_csv(
    rt: Runtime,
    path: Path,
    *,
    actor: Actor,
    on_progress: ProgressCallback | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    encoding: str = "utf-8",
) -> ImportReport:
    """Import persons from ``path``; see the module docstring. Rows of persons already
    registered change them (``ImportReport.changed``), with the effects the parts
    above subscribe to, in the same transaction.

    ``on_progress(bytes_read, total_bytes)`` is called after every chunk and at
    the end. Raises ``DomainError("CSV_HEADER_INVALID")`` (nothing imported) when
    the header is not exactly ``id_number,name,region_code,scheme,status,phone``,
    ``DomainError("CSV_NOT_UTF8")`` (nothing imported) when the file should be UTF-8
    but reads as GBK, and ``OSError`` when the file cannot be read.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding {encoding!r}")
    now = rt.clock.now()
    regions = frozenset(r.code for r in rt.policies.regions())
    total_bytes = path.stat().st_size
    refused: list[Refusal] = []
    taken = created = 0
    planned: list[tuple[Wanted, dict[str, tuple[Any, Any]]]] = []

    with path.open("rb") as fh:
        if encoding == "utf-8" and looks_like_gbk(fh.read(SNIFF_BYTES)):
            raise DomainError("CSV_NOT_UTF8", 422, detected="GBK")
        fh.seek(0)
        source = CsvSource(fh, encoding)
        rows_in = import_file.records(source)
        columns = check_header(next(rows_in, None))
        validator = RowValidator(rt.vault, now.date(), regions, columns)

        with rt.db.unit_of_work() as session:
            writer: Writer
            if session.get_bind().dialect.name != "postgresql":
                writer = SqlAlchemyWriter(session, now)
            elif citus_version(session.connection()) is not None:
                writer = CitusWriter(session, now)
            else:
                writer = PostgresWriter(session, now)

            def store(rows: list[StagedRow]) -> list[int]:
                """The chunk's persons, then the guardians of those created, then what
                the rows of known persons would change (same thread, same
                transaction)."""
                existing = writer.write(rows)
                skipped = set(existing)
                new_guardians = [
                    {"person_id": r[1], "guardian_index": g, "created_at": now}
                    for r in rows
                    if r[0] not in skipped
                    for g in validator.guardians.pop(r[1], ())
                ]
                if new_guardians:
                    session.execute(insert(PersonGuardian), new_guardians)
                if skipped:
                    known = [r for r in rows if r[0] in skipped]
                    guardians = (
                        {r[1]: validator.guardians.pop(r[1], ()) for r in known}
                        if validator.has_guardians
                        else None
                    )
                    planned.extend(wanted_changes(session, rt.vault, known, guardians))
                return existing

            # One writer thread: the database stores chunk n while we prepare chunk n + 1.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qinqing-import") as pool:
                in_flight: tuple[int, Future[list[int]]] | None = None

                def settle() -> None:
                    nonlocal in_flight, taken, created
                    if in_flight is not None:
                        size, future = in_flight
                        existing = future.result()
                        taken += size
                        created += size - len(existing)
                        in_flight = None

                def submit(rows: list[StagedRow]) -> None:
                    nonlocal in_flight
                    settle()
                    in_flight = (len(rows), pool.submit(store, rows))
                    if on_progress is not None:
                        on_progress(source.bytes_read, total_bytes)

                chunk: list[StagedRow] = []
                for line, fields, problem in rows_in:
                    result = refusal(line, problem) if problem else validator.row(line, fields)
                    if isinstance(result, Refusal):
                        refused.append(result)
                        continue
                    chunk.append(result)
                    if len(chunk) >= chunk_rows:
                        submit(chunk)
                        chunk = []
                if chunk:
                    submit(chunk)
                settle()
                if on_progress is not None:
                    on_progress(source.bytes_read, total_bytes)

            changed = apply(session, rt.events, rt.vault, planned, now)
            # One lock of the audit head for every change (the head is the last lock).
            record_many(
                session,
                actor=actor,
                at=now,
                entries=[
                    Pending(
                        action="persons.changed",
                        subject_kind="person",
                        subject_id=change.person_id,
                        details={
                            "file": path.name,
                            "line": change.line,
                            "fields": {k: list(v) for k, v in change.fields.items()},
                        },
                    )
                    for change in changed
                ],
            )
            refused.sort(key=lambda r: r.line)
            by_code = Counter(r.code for r in refused)
            by_field = Counter(name for c in changed for name in c.fields)
            record(
                session,
                actor=actor,
                action="persons.import",
                subject_kind="import",
                subject_id=uuid.uuid4(),
                at=now,
                details={
                    "file": path.name,
                    "encoding": encoding,
                    "rows": taken + len(refused),
                    "taken": taken,
                    "created": created,
                    "refused": len(refused),
                    "refused_by_code": dict(sorted(by_code.items())),
                    "changed": len(changed),
                    "changed_by_field": dict(sorted(by_field.items())),
                },
            )
    log.info(
        "persons import: %d taken (%d new), %d changed, %d refused",
        taken,
        created,
        len(changed),
        len(refused),
    )
    return ImportReport(taken=taken, refused=refused, changed=changed, created=created)
