"""Bulk import of insured persons from CSV (docs/guide.md §3.1, §5.2 ``persons import``).

The file has a header row, exactly ``id_number,name,region_code,scheme,status,phone``
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
  (``PERSON_EXISTS``); they are found by the ids we generated, which is
  race-free inside our own transaction;
* on a Citus coordinator, which cannot join a temporary table with the
  distributed ``persons``, the chunk's ID numbers are claimed in the look-up
  table from arrays (same ``ON CONFLICT``), and only the claimed rows are
  ``COPY``-ed into ``persons``;
* on SQLite (one writer at a time, ``BEGIN IMMEDIATE``) existing persons are
  looked up first and the rest inserted with ``executemany``;
* a background thread writes chunk *n* while the main thread prepares chunk
  *n + 1*, so the database and Python overlap.

The whole import is one transaction, together with its single audit entry:
either every taken row and the audit entry are committed, or nothing is.
A person is one row of ``persons``, so no person is ever half-written.
"""

from __future__ import annotations

import csv
import logging
import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import psycopg
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.identity import ric
from qinqing.identity.phone import normalize_phone
from qinqing.identity.vault import Vault
from qinqing.kit.db import citus_version
from qinqing.kit.errors import DomainError
from qinqing.persons.models import Person, PersonIdNumber, PersonStatus, Scheme
from qinqing.persons.service import ID_KIND, PHONE_KIND
from qinqing.runtime import Runtime

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = ("id_number", "name", "region_code", "scheme", "status", "phone")
EXPECTED_HEADER = ",".join(COLUMNS)
NAME_MAX = 64
DEFAULT_CHUNK_ROWS = 20_000
# A real row is under 400 bytes; anything far longer is a broken file, and reading
# it whole would let one line take the process's memory.
ROW_MAX_BYTES = 4096
# The encodings a file may be read as; "gbk" is read as GB18030, its superset, so
# every GBK file decodes exactly as GBK would.
ENCODINGS = {"utf-8": "utf-8", "gbk": "gb18030", "gb18030": "gb18030"}
_SNIFF_BYTES = 256 * 1024
_SQLITE_LOOKUP_BATCH = 500

SCHEMES = frozenset(s.value for s in Scheme)
STATUSES = frozenset(s.value for s in PersonStatus)

# C0/C1 controls, invisible format characters, line/paragraph separators.
_BAD_NAME_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")

_ID_REASONS = {
    "ID_NUMBER_LENGTH": "the ID number must have 18 characters",
    "ID_NUMBER_FORMAT": "the ID number must be 17 digits followed by a digit or X",
    "ID_NUMBER_CHECK_DIGIT": "the ID number's check digit is wrong",
    "ID_NUMBER_BIRTH_DATE": (
        "the birth date in the ID number is not a real date or lies in the future"
    ),
    "ID_NUMBER_AREA_CODE": (
        "the ID number's area code (first six digits) is not a known GB/T 2260 code"
    ),
}
_REASONS = {
    "COLUMNS_INVALID": f"the row must have exactly {len(COLUMNS)} fields ({EXPECTED_HEADER})",
    "ENCODING_INVALID": "the row is not valid text in the file's encoding (UTF-8 by default)",
    "CSV_MALFORMED": "the row is not well-formed CSV",
    "ROW_TOO_LONG": f"the row is longer than {ROW_MAX_BYTES} bytes, the limit for one row",
    "NAME_INVALID": f"the name must be 1 to {NAME_MAX} characters without control characters",
    "REGION_UNKNOWN": "the region code is not a known region",
    "SCHEME_INVALID": "the scheme must be one of " + ", ".join(s.value for s in Scheme),
    "STATUS_INVALID": "the status must be one of " + ", ".join(s.value for s in PersonStatus),
    "PHONE_INVALID": "the phone must be empty or an 11-digit mainland mobile number",
    "PERSON_EXISTS": "a person with this ID number is already registered",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused row: physical line (header = 1), stable code, English reason without PII."""

    line: int
    code: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ImportReport:
    taken: int
    refused: list[Refusal] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.taken + len(self.refused)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape of docs/guide.md §5: ``{"taken": N, "refused": [{line, code, reason}]}``."""
        return {"taken": self.taken, "refused": [r.as_dict() for r in self.refused]}


ProgressCallback = Callable[[int, int], None]

# A validated row, in the staging table's column order:
# line, id, id_number_index, id_number_cipher, name, region_code, scheme, status,
# birth_date, sex, phone_index, phone_cipher
StagedRow = tuple[
    int, uuid.UUID, str, bytes, str, str, str, str, date, str, str | None, bytes | None
]
_STAGED_COLUMNS = (
    "line",
    "id",
    "id_number_index",
    "id_number_cipher",
    "name",
    "region_code",
    "scheme",
    "status",
    "birth_date",
    "sex",
    "phone_index",
    "phone_cipher",
)


def _refusal(line: int, code: str) -> Refusal:
    return Refusal(line, code, _ID_REASONS.get(code) or _REASONS[code])


# --------------------------------------------------------------------------- reading


def looks_like_gbk(head: bytes) -> bool:
    """True when the lines of ``head`` (the start of a file) that are not ASCII are all
    GB18030/GBK and none of them is UTF-8: a file saved in GBK, not a UTF-8 file with
    a stray line (that line alone is refused). A last line cut short is ignored."""
    lines = head.split(b"\n")
    if not head.endswith(b"\n"):
        lines = lines[:-1] or lines
    gbk_lines = 0
    for line in lines:
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            return False
        except UnicodeDecodeError:
            pass
        try:
            line.decode("gb18030")
        except UnicodeDecodeError:
            return False
        gbk_lines += 1
    return gbk_lines > 0


class _Source:
    """Physical lines of a binary file, decoded; counts lines and remembers the
    undecodable ones and the ones over ``ROW_MAX_BYTES`` (read no further than that)."""

    def __init__(self, fh: IO[bytes], encoding: str = "utf-8") -> None:
        self._fh = fh
        self._codec = ENCODINGS[encoding]
        self.line_no = 0
        self.bad_lines: set[int] = set()
        self.long_lines: set[int] = set()

    def _lines(self) -> Iterator[bytes]:
        while raw := self._fh.readline(ROW_MAX_BYTES + 1):
            if len(raw) > ROW_MAX_BYTES and not raw.endswith(b"\n"):
                # Skip the rest of the line without holding it.
                while (rest := self._fh.readline(64 * 1024)) and not rest.endswith(b"\n"):
                    pass
                yield b""
                continue
            yield raw

    def __iter__(self) -> Iterator[str]:
        for raw in self._lines():
            self.line_no += 1
            if not raw or len(raw) > ROW_MAX_BYTES:
                self.long_lines.add(self.line_no)
                yield "\n"
                continue
            if self.line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode(self._codec)
            except UnicodeDecodeError:
                self.bad_lines.add(self.line_no)
                yield raw.decode(self._codec, errors="replace")

    @property
    def bytes_read(self) -> int:
        return self._fh.tell()


def _records(source: _Source) -> Iterator[tuple[int, list[str], str | None]]:
    """(first physical line, fields, problem code or None) per CSV record.

    Blank lines are skipped. A record spanning several physical lines (a quoted
    field with a line break) is numbered by its first line.
    """
    reader = csv.reader(source, strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = source.line_no
            # csv's own limit (128 KiB) stops a quoted field that runs over many lines.
            too_long = "field larger than field limit" in str(exc) or any(
                start <= n <= end for n in source.long_lines
            )
            yield start, [], "ROW_TOO_LONG" if too_long else "CSV_MALFORMED"
            continue
        end = reader.line_num
        if source.long_lines and any(start <= n <= end for n in source.long_lines):
            yield start, [], "ROW_TOO_LONG"
            continue
        if not fields:
            continue
        if source.bad_lines and any(start <= n <= end for n in source.bad_lines):
            yield start, fields, "ENCODING_INVALID"
            continue
        yield start, fields, None


def _check_header(record: tuple[int, list[str], str | None] | None) -> None:
    if (
        record is None
        or record[0] != 1
        or record[2] is not None
        or [f.strip() for f in record[1]] != list(COLUMNS)
    ):
        raise DomainError("CSV_HEADER_INVALID", 422, expected=EXPECTED_HEADER)


# --------------------------------------------------------------------------- validating


class _Validator:
    """Validates and vault-encodes rows; remembers accepted ID numbers to find duplicates."""

    def __init__(self, vault: Vault, today: date, regions: frozenset[str]) -> None:
        self._vault = vault
        self._today = today
        self._regions = regions
        # first 17 digits of an accepted ID number -> its line (the 18th follows from them)
        self._seen: dict[int, int] = {}

    def row(self, line: int, fields: list[str]) -> StagedRow | Refusal:
        if len(fields) != len(COLUMNS):
            return _refusal(line, "COLUMNS_INVALID")
        raw_id, raw_name, raw_region, raw_scheme, raw_status, raw_phone = fields
        try:
            ident = ric.parse(raw_id, self._today)
        except ric.InvalidIdNumber as exc:
            return _refusal(line, exc.code)
        name = unicodedata.normalize("NFC", raw_name.strip())
        if not name or len(name) > NAME_MAX or _BAD_NAME_CHAR.search(name):
            return _refusal(line, "NAME_INVALID")
        region = raw_region.strip()
        if region not in self._regions:
            return _refusal(line, "REGION_UNKNOWN")
        scheme = raw_scheme.strip().lower()
        if scheme not in SCHEMES:
            return _refusal(line, "SCHEME_INVALID")
        status = raw_status.strip().lower()
        if status not in STATUSES:
            return _refusal(line, "STATUS_INVALID")
        phone: str | None = None
        if raw_phone.strip():
            phone = normalize_phone(raw_phone)
            if phone is None:
                return _refusal(line, "PHONE_INVALID")
        key = int(ident.number[:17])
        first = self._seen.setdefault(key, line)
        if first != line:
            return Refusal(line, "DUPLICATE_IN_FILE", f"the same ID number is on line {first}")
        vault = self._vault
        number = ident.number
        return (
            line,
            uuid.uuid4(),
            vault.index(ID_KIND, number),
            vault.encrypt(ID_KIND, number),
            name,
            region,
            scheme,
            status,
            ident.birth_date,
            ident.sex,
            vault.index(PHONE_KIND, phone) if phone else None,
            vault.encrypt(PHONE_KIND, phone) if phone else None,
        )


# --------------------------------------------------------------------------- writing


class _Writer(Protocol):
    def write(self, rows: Sequence[StagedRow]) -> list[int]:
        """Store a chunk of validated rows; return the lines of persons that already existed."""


_STAGING = "qinqing_person_import"


def _psycopg_connection(session: Session) -> psycopg.Connection[Any]:
    raw = session.connection().connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("the PostgreSQL import needs the psycopg 3 driver")
    return raw


class _PostgresWriter:
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
        columns = ", ".join(_STAGED_COLUMNS)
        moved = ", ".join(_STAGED_COLUMNS[1:])
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
                f"SELECT {', '.join('s.' + c for c in _STAGED_COLUMNS[1:])}, %(now)s, %(now)s "
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


class _CitusWriter:
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
            columns = ", ".join(_STAGED_COLUMNS[1:])
            with cur.copy(f"COPY persons ({columns}, created_at, updated_at) FROM STDIN") as copy:
                for r in rows:
                    if r[1] in claimed:
                        copy.write_row((*r[1:], self._now, self._now))
        return [r[0] for r in rows if r[1] not in claimed]


class _SqlAlchemyWriter:
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
                **dict(zip(_STAGED_COLUMNS[1:], r[1:], strict=True)),
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


# --------------------------------------------------------------------------- the use case


def import_csv(
    rt: Runtime,
    path: Path,
    *,
    actor: Actor,
    on_progress: ProgressCallback | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    encoding: str = "utf-8",
) -> ImportReport:
    """Import persons from ``path``; see the module docstring.

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
    validator = _Validator(rt.vault, now.date(), regions)
    total_bytes = path.stat().st_size
    refused: list[Refusal] = []
    taken = 0

    with path.open("rb") as fh:
        if encoding == "utf-8" and looks_like_gbk(fh.read(_SNIFF_BYTES)):
            raise DomainError("CSV_NOT_UTF8", 422, detected="GBK")
        fh.seek(0)
        source = _Source(fh, encoding)
        records = _records(source)
        _check_header(next(records, None))

        with rt.db.unit_of_work() as session:
            writer: _Writer
            if session.get_bind().dialect.name != "postgresql":
                writer = _SqlAlchemyWriter(session, now)
            elif citus_version(session.connection()) is not None:
                writer = _CitusWriter(session, now)
            else:
                writer = _PostgresWriter(session, now)
            # One writer thread: the database stores chunk n while we prepare chunk n + 1.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qinqing-import") as pool:
                in_flight: tuple[int, Future[list[int]]] | None = None

                def settle() -> None:
                    nonlocal in_flight, taken
                    if in_flight is not None:
                        size, future = in_flight
                        existing = future.result()
                        refused.extend(_refusal(n, "PERSON_EXISTS") for n in existing)
                        taken += size - len(existing)
                        in_flight = None

                def submit(rows: list[StagedRow]) -> None:
                    nonlocal in_flight
                    settle()
                    in_flight = (len(rows), pool.submit(writer.write, rows))
                    if on_progress is not None:
                        on_progress(source.bytes_read, total_bytes)

                chunk: list[StagedRow] = []
                for line, fields, problem in records:
                    result = _refusal(line, problem) if problem else validator.row(line, fields)
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

            refused.sort(key=lambda r: r.line)
            by_code = Counter(r.code for r in refused)
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
                    "refused": len(refused),
                    "refused_by_code": dict(sorted(by_code.items())),
                },
            )
    log.info("persons import: %d taken, %d refused", taken, len(refused))
    return ImportReport(taken=taken, refused=refused)
