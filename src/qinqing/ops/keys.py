"""Key rotation (``qinqing keys rotate``): move every vaulted value to a new master key.

The new key (``QINQING_NEW_SECRET_KEY``) is registered as version ``n + 1``
(state ``next``); every vaulted column is re-encrypted and re-indexed in
batches (one transaction each, which also re-keys the look-up tables keyed by
those blind indexes); stored API answers are re-sealed; the audit chain is
re-keyed (each entry first proven under the old key); then the states swap in
one transaction. It runs with the service stopped: while a rotation is
unfinished nothing else starts and ``/readyz`` answers 503. Every step is
idempotent (a row already under the new version is skipped; the audit cursor
is stored with each batch), so an interrupted rotation is resumed by running
the same command again. The key check itself is ``identity.keys``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Column, Table, and_, delete, func, select, true, tuple_
from sqlalchemy.orm import Session

from qinqing.audit.models import AuditHead
from qinqing.audit.service import ChainBroken, RechainCursor, digest, rechain, record
from qinqing.auth import mfa
from qinqing.auth.models import AccountLogin, PersonAccount, StaffUser
from qinqing.banks.endpoints import SECRET_KIND
from qinqing.banks.models import BankAccountIndex, BankLink, WebhookEndpoint
from qinqing.banks.service import ACCOUNT_KIND
from qinqing.family.models import LinkProof
from qinqing.family.proofs import PROOF_FILE_KIND, PROOF_NUMBER_KIND
from qinqing.http.idempotency import seal_context
from qinqing.http.idempotency_models import IdempotencyKey
from qinqing.identity.keys import CURRENT, NEXT, RETIRED, VaultKey, known_keys, problem
from qinqing.identity.vault import Vault, blob_version
from qinqing.kit.db import Base, Database
from qinqing.kit.locking import locked
from qinqing.persons.models import Person, PersonIdNumber
from qinqing.persons.service import ID_KIND, PHONE_KIND


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
    # A file (bytes), not a text: re-encrypted as bytes.
    binary: bool = False

    def __post_init__(self) -> None:
        if self.lookup is not None and self.index is None:
            raise ValueError("a look-up table follows a blind index; name the index column")


def vaulted_columns() -> list[VaultedColumn]:
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
        # The ID number a bank named when it started a link (nobody's links too).
        VaultedColumn(BankLink, "claimed_id_cipher", ID_KIND),
        VaultedColumn(WebhookEndpoint, "secret_cipher", SECRET_KIND),
        VaultedColumn(StaffUser, "totp_cipher", mfa.SECRET_KIND),
        VaultedColumn(LinkProof, "content_cipher", PROOF_FILE_KIND, binary=True),
        VaultedColumn(LinkProof, "document_number_cipher", PROOF_NUMBER_KIND),
    ]


Progress = Callable[[str, int, int], None]  # (step, done so far, total)


class RotationError(Exception):
    pass


@contextmanager
def _uow(db: Database, vault: Vault) -> Iterator[Session]:
    """A unit of work whose audit appends use ``vault``."""
    with db.unit_of_work() as session:
        session.info["vault"] = vault
        yield session


def begin(db: Database, old: Vault, new: Vault, now: datetime) -> None:
    """Register ``new`` as the next key (or check it is the one already registered)."""
    if new.key_check() == old.key_check():
        raise RotationError("QINQING_NEW_SECRET_KEY is the same key as QINQING_SECRET_KEY")
    with _uow(db, old) as session:
        rows = known_keys(session)
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
                    if col.binary:
                        setattr(
                            row,
                            col.cipher,
                            new.encrypt_bytes(col.kind, old.decrypt_bytes(col.kind, blob)),
                        )
                        changed += 1
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
                context = seal_context(row.caller, row.key)
                plain = old.unseal(context, blob)
                row.response = {"sealed": base64.b64encode(new.seal(context, plain)).decode()}
                changed += 1
            done += len(rows)
        progress(step, done, total)


def _rekey_audit(db: Database, old: Vault, new: Vault, batch: int, progress: Progress) -> int:
    def old_ok(prev: str, seq: int, fields: dict[str, Any], h: str) -> bool:
        return digest(old, prev, seq, fields) == h

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
        for row in known_keys(session):
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
