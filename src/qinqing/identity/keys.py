"""The master key's check value, and key rotation.

A database remembers which master key its personal data was sealed with: at
first start a key-check value (an HMAC of a constant under a sub-key of the
master key, see ``Vault.key_check``) is stored in ``vault_keys`` with a key
version. Every later start compares it, and refuses to run with another key:
a wrong key would make every ciphertext unreadable and every blind index miss
(an import would then create duplicate persons).

Rotation (``qinqing keys rotate``, the new key in ``QINQING_NEW_SECRET_KEY``)
registers the new key as version ``n + 1`` (state ``next``), re-encrypts and
re-indexes every vaulted column in batches (one transaction each, which also
re-keys the look-up tables keyed by those blind indexes), re-seals
stored API answers, re-keys the audit chain (each entry first proven under the
old key), and then swaps the states in one transaction. It runs with the
service stopped: while a rotation is unfinished nothing else starts and
``/readyz`` answers 503. Every step is idempotent (a row already under the new
version is skipped; the audit cursor is stored with each batch), so an
interrupted rotation is resumed by running the same command again.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    String,
    Table,
    and_,
    delete,
    func,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from qinqing.identity.vault import Vault, blob_version
from qinqing.kit.db import Base, Database, UTCDateTime, insert_ignore
from qinqing.kit.locking import locked

log = logging.getLogger("qinqing.keys")

CURRENT, NEXT, RETIRED = "current", "next", "retired"


class VaultKey(Base):
    """One master key this database has known: its check value and state."""

    __tablename__ = "vault_keys"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key_check: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # current | next | retired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A rotation's resumable cursor (the audit chain's position).
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class KeyCheckError(Exception):
    """The configured key is not this database's key (the text names the problem,
    never a key)."""


WRONG_KEY = (
    "QINQING_SECRET_KEY is not the key this database's personal data was encrypted "
    "with (key check failed). Set the right key; with another one ID numbers and "
    "phones cannot be read and imports would create duplicate persons."
)
ROTATING = (
    "a key rotation is unfinished: finish it with `qinqing keys rotate` "
    "(QINQING_SECRET_KEY = the old key, QINQING_NEW_SECRET_KEY = the new one) before starting"
)


def _rows(session: Session) -> list[VaultKey]:
    return list(session.execute(select(VaultKey).order_by(VaultKey.version)).scalars())


def problem(session: Session, vault: Vault, *, rotating_ok: bool = False) -> str | None:
    """Why this vault may not serve this database (None: it may). Read-only."""
    rows = _rows(session)
    mine = vault.key_check()
    current = next((r for r in rows if r.state == CURRENT), None)
    pending = next((r for r in rows if r.state == NEXT), None)
    if current is None:
        return "the database has no key check yet"
    if current.key_check != mine:
        if pending is not None and pending.key_check == mine:
            return "QINQING_SECRET_KEY is the new key of an unfinished rotation; " + ROTATING
        if any(r.state == RETIRED and r.key_check == mine for r in rows):
            return "QINQING_SECRET_KEY is a retired key: this database was rotated to a newer one"
        return WRONG_KEY
    if pending is not None and not rotating_ok:
        return ROTATING
    return None


def ensure(session: Session, vault: Vault, now: datetime, *, rotating_ok: bool = False) -> None:
    """At every start: record the key check on first start, then compare it.

    Sets ``vault.version`` to the database's version of this key. Raises
    :class:`KeyCheckError` on a mismatch. On the first start of a database made
    before keys were checked, also keys the audit chain (unless it is already
    broken) and seals answers stored in clear.
    """
    from qinqing.audit.models import AuditHead
    from qinqing.audit.service import ChainBroken, key_legacy_chain
    from qinqing.http.idempotency import seal_legacy_answers

    if session.info.get("vault") is None:
        session.info["vault"] = vault

    insert_ignore(
        session,
        VaultKey,
        {
            "version": 1,
            "key_check": vault.key_check(),
            "state": CURRENT,
            "created_at": now,
            "progress": {},
        },
    )
    found = problem(session, vault, rotating_ok=rotating_ok)
    if found:
        raise KeyCheckError(found)
    current = session.execute(select(VaultKey).where(VaultKey.state == CURRENT)).scalar_one()
    vault.version = current.version
    head = session.get(AuditHead, 1)
    if head is None or head.mac is not None:
        return
    # The first start with keyed storage (a new database, or one made before).
    try:
        with session.begin_nested():
            key_legacy_chain(session, vault)
    except ChainBroken as exc:
        # Keying a chain that is already broken would launder it; stopping the
        # whole service for it would stop payments. Leave it unkeyed, so that
        # `audit verify` fails, and say so loudly.
        log.critical("%s: the unkeyed audit chain was altered; left for `audit verify`", exc)
    seal_legacy_answers(session, vault)


# --- rotation -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LookupTable:
    """A small table keyed by a blind index (the scale-out rule's global-uniqueness
    table, e.g. ``bank_account_index``): its ``key`` column holds the same value as
    the vaulted row's index column, so it is re-keyed with that row, in the same
    transaction."""

    table: type[Base]
    key: str


@dataclass(frozen=True, slots=True)
class VaultedColumn:
    """One ciphertext column and, if any, the blind index computed from the same value
    and the look-up table keyed by that index.

    Every ``LargeBinary`` column of the schema must be listed here (a test checks):
    a column the rotation does not know would become unreadable after it. Every
    table whose primary key is a blind index must be named as a ``lookup`` (a
    test checks that too): one left on the old key would stop finding duplicates.
    """

    table: type[Base]
    cipher: str
    kind: str
    index: str | None = None
    lookup: LookupTable | None = None

    def __post_init__(self) -> None:
        if self.lookup is not None and self.index is None:
            raise ValueError("a look-up table follows a blind index; name the index column")


def vaulted_columns() -> list[VaultedColumn]:
    from qinqing.auth.models import AccountLogin, PersonAccount
    from qinqing.banks.models import BankAccountIndex, BankLink, WebhookEndpoint
    from qinqing.banks.service import ACCOUNT_KIND
    from qinqing.banks.webhooks import SECRET_KIND
    from qinqing.persons.models import Person, PersonIdNumber
    from qinqing.persons.service import ID_KIND, PHONE_KIND

    return [
        VaultedColumn(
            Person,
            "id_number_cipher",
            ID_KIND,
            "id_number_index",
            LookupTable(PersonIdNumber, "id_number_index"),
        ),
        VaultedColumn(Person, "phone_cipher", PHONE_KIND, "phone_index"),
        VaultedColumn(
            PersonAccount,
            "phone_cipher",
            PHONE_KIND,
            "login_index",
            LookupTable(AccountLogin, "login_index"),
        ),
        VaultedColumn(
            BankLink,
            "account_cipher",
            ACCOUNT_KIND,
            "account_index",
            LookupTable(BankAccountIndex, "account_index"),
        ),
        VaultedColumn(WebhookEndpoint, "secret_cipher", SECRET_KIND),
    ]


Progress = Callable[[str, int, int], None]  # (step, done so far, total)


class RotationError(Exception):
    pass


def _uow(db: Database, vault: Vault) -> Any:
    """A unit of work whose audit appends use ``vault``."""
    from contextlib import contextmanager

    @contextmanager
    def scope() -> Any:
        with db.unit_of_work() as session:
            session.info["vault"] = vault
            yield session

    return scope()


def begin(db: Database, old: Vault, new: Vault, now: datetime) -> None:
    """Register ``new`` as the next key (or check it is the one already registered)."""
    if new.key_check() == old.key_check():
        raise RotationError("QINQING_NEW_SECRET_KEY is the same key as QINQING_SECRET_KEY")
    with _uow(db, old) as session:
        rows = _rows(session)
        found = problem(session, old, rotating_ok=True)
        if found:
            raise RotationError(found)
        current = next(r for r in rows if r.state == CURRENT)
        pending = next((r for r in rows if r.state == NEXT), None)
        if any(r.key_check == new.key_check() and r.state == RETIRED for r in rows):
            raise RotationError("QINQING_NEW_SECRET_KEY is a retired key; choose a new one")
        if pending is None:
            version = current.version % 255 + 1
            session.add(
                VaultKey(
                    version=version,
                    key_check=new.key_check(),
                    state=NEXT,
                    created_at=now,
                    progress={},
                )
            )
        elif pending.key_check != new.key_check():
            raise RotationError(
                "another rotation, to a different new key, is unfinished; finish it with "
                "that key in QINQING_NEW_SECRET_KEY"
            )
        else:
            version = pending.version
        old.version, new.version = current.version, version


def _reencrypt_table(
    db: Database,
    old: Vault,
    new: Vault,
    table: type[Base],
    columns: list[VaultedColumn],
    batch: int,
    progress: Progress,
) -> int:
    pk = list(table.__table__.primary_key.columns)  # type: ignore[attr-defined]
    with db.unit_of_work() as session:
        total = int(session.execute(select(func.count()).select_from(table)).scalar_one())
    step = f"{table.__tablename__} ({', '.join(c.cipher for c in columns)})"
    progress(step, 0, total)
    done, changed, last = 0, 0, None
    while True:
        with db.unit_of_work() as session:
            rows, last = _next_batch(session, table, pk, last, batch)
            if last is None:
                return changed
            # Per look-up table: old index -> new index (several rows may share one
            # value, e.g. an ended and an active link of one account).
            moves: dict[int, dict[str, str]] = {}
            for row in rows:
                for n, col in enumerate(columns):
                    blob = getattr(row, col.cipher)
                    if blob is None or blob_version(blob) == new.version:
                        continue
                    value = old.decrypt(col.kind, blob)
                    setattr(row, col.cipher, new.encrypt(col.kind, value))
                    if col.index:
                        before = getattr(row, col.index)
                        setattr(row, col.index, new.index(col.kind, value))
                        if col.lookup is not None and before is not None:
                            moves.setdefault(n, {})[before] = getattr(row, col.index)
                    changed += 1
            for n, moved in moves.items():
                _rekey_lookup(session, columns[n].lookup, moved)
            done += len(rows)
        progress(step, done, total)


def _next_batch(
    session: Session,
    model: type[Base],
    pk: list[Column[Any]],
    last: tuple[Any, ...] | None,
    batch: int,
) -> tuple[list[Any], tuple[Any, ...] | None]:
    """The next ``batch`` rows after the key ``last`` in primary-key order, locked
    ``FOR UPDATE``, and the cursor to go on from (None: no rows are left).

    The batch's keys are read without a lock, then its rows are locked and read again
    with :func:`qinqing.kit.locking.locked`: on one database in one statement over the
    batch's key range; on a Citus cluster, which refuses a ``FOR UPDATE`` spanning
    shards, one row at a time by its full primary key. That key holds the
    distribution column (the placement rule of ``qinqing.schema.distribution``), so each
    lock names one owner and runs on one shard. Only what was read under the lock is
    rewritten, so a row changed or deleted between the two reads is handled as it
    now is. A row inserted between them could slip past the cluster's per-row locks,
    but nothing writes while a rotation is unfinished: it runs with the service
    stopped, and the service refuses to start until it is done.
    """
    after = tuple_(*pk) > tuple_(*last) if last is not None else true()
    keys = session.execute(select(*pk).where(after).order_by(*pk).limit(batch)).all()
    if not keys:
        return [], None
    upto = tuple(keys[-1])
    stmt = select(model).order_by(*pk).with_for_update()
    rows = locked(
        session,
        stmt,
        together=and_(after, tuple_(*pk) <= tuple_(*upto)),
        one_by_one=[
            and_(*(col == value for col, value in zip(pk, key, strict=True))) for key in keys
        ],
    )
    return [row[0] for row in rows], upto


def _rekey_lookup(session: Session, lookup: LookupTable | None, moved: dict[str, str]) -> None:
    """Move look-up rows from their old index to the new one, in the batch's transaction
    (so a resumed rotation finds each row and its look-up on the same key). Deleted
    and inserted again rather than updated: the index is the row's key, and on a
    distributed database the key that places the row cannot be updated."""
    assert lookup is not None
    table = cast(Table, lookup.table.__table__)
    key = table.c[lookup.key]
    rows = [
        dict(r._mapping) for r in session.execute(select(table).where(key.in_(sorted(moved)))).all()
    ]
    if not rows:
        return
    session.execute(delete(table).where(key.in_(sorted(moved))))
    session.execute(table.insert(), [{**r, lookup.key: moved[r[lookup.key]]} for r in rows])


def _reseal_answers(db: Database, old: Vault, new: Vault, batch: int, progress: Progress) -> int:
    from qinqing.http.idempotency import _context
    from qinqing.http.idempotency_models import IdempotencyKey

    with db.unit_of_work() as session:
        total = int(session.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one())
    step = "idempotency_keys (stored answers)"
    progress(step, 0, total)
    done, changed, last = 0, 0, None
    pk = list(IdempotencyKey.__table__.primary_key.columns)  # type: ignore[attr-defined]
    while True:
        with db.unit_of_work() as session:
            rows, last = _next_batch(session, IdempotencyKey, pk, last, batch)
            if last is None:
                return changed
            for row in rows:
                sealed = row.response.get("sealed")
                if not isinstance(sealed, str):
                    continue
                blob = base64.b64decode(sealed)
                if blob_version(blob) == new.version:
                    continue
                context = _context(row.caller, row.key)
                plain = old.unseal(context, blob)
                row.response = {"sealed": base64.b64encode(new.seal(context, plain)).decode()}
                changed += 1
            done += len(rows)
        progress(step, done, total)


def _rekey_audit(db: Database, old: Vault, new: Vault, batch: int, progress: Progress) -> int:
    from qinqing.audit.models import AuditHead
    from qinqing.audit.service import ChainBroken, RechainCursor, _digest, rechain

    def old_ok(prev: str, seq: int, fields: dict[str, Any], h: str) -> bool:
        return _digest(old, prev, seq, fields) == h

    with db.unit_of_work() as session:
        head = session.get(AuditHead, 1)
        total = head.seq if head else 0
    step = "audit chain"
    changed = 0
    while True:
        with db.unit_of_work() as session:
            pending = session.execute(
                select(VaultKey).where(VaultKey.state == NEXT).with_for_update()
            ).scalar_one()
            saved = dict(pending.progress.get("audit") or {})
            if saved.get("finished"):
                progress(step, total, total)
                return changed
            cursor = RechainCursor(**saved) if saved else RechainCursor()
            progress(step, cursor.seq, total)
            try:
                n = rechain(session, old_ok=old_ok, new=new, cursor=cursor, limit=batch)
            except ChainBroken as exc:
                raise RotationError(
                    f"{exc} under the old key; run `qinqing audit verify` and investigate "
                    "before rotating"
                ) from None
            state: dict[str, Any] = {
                "seq": cursor.seq,
                "old_prev": cursor.old_prev,
                "new_prev": cursor.new_prev,
            }
            if n == 0:
                state["finished"] = True
            pending.progress = {**pending.progress, "audit": state}
            changed += n


def rotate(
    db: Database,
    old: Vault,
    new: Vault,
    now: Callable[[], datetime],
    *,
    batch: int = 1000,
    progress: Progress | None = None,
    actor: Any = None,
) -> dict[str, int]:
    """Run (or resume) a rotation to completion; counts of rewritten values per step."""
    from qinqing.audit.service import record

    report = progress or (lambda _step, _done, _total: None)
    begin(db, old, new, now())
    counts: dict[str, int] = {}
    by_table: dict[type[Base], list[VaultedColumn]] = {}
    for col in vaulted_columns():
        by_table.setdefault(col.table, []).append(col)
    for table, cols in by_table.items():
        counts[table.__tablename__] = _reencrypt_table(db, old, new, table, cols, batch, report)
    counts["idempotency_keys"] = _reseal_answers(db, old, new, batch, report)
    counts["audit_log"] = _rekey_audit(db, old, new, batch, report)
    with _uow(db, new) as session:
        at = now()
        for row in _rows(session):
            if row.state == CURRENT:
                row.state, row.finished_at = RETIRED, at
            elif row.state == NEXT:
                row.state, row.finished_at = CURRENT, at
        session.flush()
        if actor is not None:
            record(
                session,
                actor=actor,
                action="keys.rotate",
                subject_kind="vault_key",
                subject_id=new.version,
                at=at,
                details={k: v for k, v in counts.items()},
            )
    return counts
