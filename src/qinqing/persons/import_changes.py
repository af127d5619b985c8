"""Known persons in a re-import (docs/guide.md §3.1, §5.2 ``persons import``): what
the file changes — status, scheme, region, phone and, when the file has the column,
guardians — and applying it. The name is the registry's identity check, not a
field an import changes.

While the file streams, each chunk's rows of persons already registered are
compared with their rows as stored (read without a lock): only those that differ
are kept (:func:`wanted_changes`). After the last chunk :func:`apply` changes
them in one step, taking every lock in the global order (docs/ledger.md, "Lock
order"): ``PersonsChanging`` first (its subscribers lock the family links the
change will end), then the persons' rows in ascending id, compared again under
the lock and updated, then ``PersonsChanged`` (its subscribers end links, note
resident contributions, write their audit entries last).

What a change shows never holds a phone or an ID number in clear: the phone is
masked (``138****0001``), guardians are counted (``persons.events.FIELDS``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, Uuid, any_, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

from qinqing.identity.masking import mask_phone
from qinqing.identity.vault import Vault
from qinqing.kit.events import EventBus
from qinqing.kit.locking import locked
from qinqing.persons.events import PersonChanged, PersonsChanged, PersonsChanging
from qinqing.persons.import_rows import StagedRow
from qinqing.persons.models import Person, PersonGuardian, PersonIdNumber
from qinqing.persons.service import PHONE_KIND

BATCH = 1000
_COLUMNS = (
    Person.id,
    Person.region_code,
    Person.scheme,
    Person.status,
    Person.phone_index,
    Person.phone_cipher,
)


@dataclass(frozen=True, slots=True)
class Wanted:
    """A known person as a line of the file has them (``guardians`` None: the file has
    no guardians column, so they stay as they are)."""

    line: int
    person_id: uuid.UUID
    region_code: str
    scheme: str
    status: str
    phone_index: str | None
    phone_cipher: bytes | None
    guardians: tuple[str, ...] | None


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), BATCH):
        yield items[i : i + BATCH]


def _among(
    session: Session, column: InstrumentedAttribute[Any], values: Sequence[Any]
) -> Iterator[ColumnElement[bool]]:
    """``column IN values``, as few conditions as it takes: on PostgreSQL one
    ``= ANY(array)`` (a chunk's 20,000 expanded parameters cost seconds to send),
    elsewhere ``IN`` lists of ``BATCH`` (SQLite limits a statement's parameters)."""
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql":
        kind = Uuid() if isinstance(values[0], uuid.UUID) else String()
        yield column == any_(bindparam(None, list(values), type_=ARRAY(kind)))
        return
    for batch in _batches(values):
        yield column.in_(batch)


def _guardians_of(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    out: dict[uuid.UUID, set[str]] = {}
    for batch in _batches(sorted(set(ids), key=str)):
        for pid, index in session.execute(
            select(PersonGuardian.person_id, PersonGuardian.guardian_index).where(
                PersonGuardian.person_id.in_(batch)
            )
        ):
            out.setdefault(pid, set()).add(index)
    return out


def _masked(vault: Vault, cipher: bytes | None) -> str | None:
    return mask_phone(vault.decrypt(PHONE_KIND, cipher)) if cipher else None


def differences(
    vault: Vault, stored: Any, guardians: set[str], wanted: Wanted
) -> dict[str, tuple[Any, Any]]:
    """``field -> (old, new)`` for what ``wanted`` changes of the ``stored`` row (a
    row of ``_COLUMNS``), in ``persons.events.FIELDS`` order; empty when nothing."""
    fields: dict[str, tuple[Any, Any]] = {}
    for name in ("region_code", "scheme", "status"):
        old, new = getattr(stored, name), getattr(wanted, name)
        if old != new:
            fields[name] = (old, new)
    if stored.phone_index != wanted.phone_index:
        fields["phone"] = (_masked(vault, stored.phone_cipher), _masked(vault, wanted.phone_cipher))
    if wanted.guardians is not None and set(wanted.guardians) != guardians:
        fields["guardians"] = (len(guardians), len(wanted.guardians))
    return fields


def wanted_changes(
    session: Session,
    vault: Vault,
    rows: Sequence[StagedRow],
    guardians: dict[uuid.UUID, tuple[str, ...]] | None,
) -> list[tuple[Wanted, dict[str, tuple[Any, Any]]]]:
    """The rows (of persons already registered) whose data differ from the stored
    persons', with the planned changes; read without a lock. ``guardians``: the
    staged rows' guardians by staged id, or None when the file has no such column."""
    if not rows:
        return []
    # Core rows (no ORM loading): a chunk is 20,000 rows.
    conn = session.connection()
    ids: dict[str, uuid.UUID] = {
        index: pid
        for among in _among(session, PersonIdNumber.id_number_index, [r[2] for r in rows])
        for index, pid in conn.execute(
            select(PersonIdNumber.id_number_index, PersonIdNumber.person_id).where(among)
        )
    }
    found = {
        row.id: row
        for among in _among(session, Person.id, list(ids.values()))
        for row in conn.execute(select(*_COLUMNS).where(among))
    }
    current = _guardians_of(session, found) if guardians is not None else {}
    out: list[tuple[Wanted, dict[str, tuple[Any, Any]]]] = []
    for r in rows:
        pid = ids.get(r[2])
        stored = found.get(pid) if pid is not None else None
        if pid is None or stored is None:
            continue
        wanted = Wanted(
            line=r[0],
            person_id=pid,
            region_code=r[5],
            scheme=r[6],
            status=r[7],
            phone_index=r[10],
            phone_cipher=r[11],
            guardians=None if guardians is None else guardians.get(r[1], ()),
        )
        fields = differences(vault, stored, current.get(pid, set()), wanted)
        if fields:
            out.append((wanted, fields))
    return out


def _lock(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The persons' rows, locked FOR NO KEY UPDATE in ascending id (``ids`` sorted)."""
    stmt = (
        select(*_COLUMNS)
        .order_by(Person.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return {
        row.id: row
        for row in locked(session, stmt, Person.id.in_(ids), [Person.id == pid for pid in ids])
    }


def apply(
    session: Session,
    events: EventBus,
    vault: Vault,
    planned: Sequence[tuple[Wanted, dict[str, tuple[Any, Any]]]],
    now: datetime,
) -> list[PersonChanged]:
    """Apply the planned changes (see the module docstring); the changes made, by line."""
    if not planned:
        return []
    events.publish(
        session,
        PersonsChanging(
            tuple(PersonChanged(w.person_id, fields, now, w.line) for w, fields in planned)
        ),
    )
    by_person = {w.person_id: w for w, _ in planned}
    ids = sorted(by_person, key=str)
    changes: list[PersonChanged] = []
    for batch in _batches(ids):
        stored = _lock(session, batch)
        with_guardians = [pid for pid in batch if by_person[pid].guardians is not None]
        current = _guardians_of(session, with_guardians) if with_guardians else {}
        updates: list[dict[str, Any]] = []
        new_guardians: list[dict[str, Any]] = []
        replaced: list[uuid.UUID] = []
        for pid in batch:
            row, wanted = stored.get(pid), by_person[pid]
            if row is None:  # pragma: no cover - persons are never deleted
                continue
            fields = differences(vault, row, current.get(pid, set()), wanted)
            if not fields:
                continue
            changes.append(PersonChanged(pid, fields, now, wanted.line))
            updates.append(
                {
                    "id": pid,
                    "region_code": wanted.region_code,
                    "scheme": wanted.scheme,
                    "status": wanted.status,
                    "phone_index": wanted.phone_index,
                    "phone_cipher": wanted.phone_cipher,
                    "updated_at": now,
                }
            )
            if "guardians" in fields and wanted.guardians is not None:
                replaced.append(pid)
                new_guardians += [
                    {"person_id": pid, "guardian_index": g, "created_at": now}
                    for g in wanted.guardians
                ]
        if updates:
            session.execute(update(Person), updates)
        if replaced:
            session.execute(delete(PersonGuardian).where(PersonGuardian.person_id.in_(replaced)))
        if new_guardians:
            session.execute(insert(PersonGuardian), new_guardians)
    changes.sort(key=lambda c: c.line or 0)
    if changes:
        events.publish(session, PersonsChanged(tuple(changes), now))
    return changes
