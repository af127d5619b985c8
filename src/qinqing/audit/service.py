"""The append-only, keyed hash chain of audit entries (every state change is recorded).

Each entry's hash is an HMAC-SHA256, under a sub-key of the master secret key,
over its own fields and the previous entry's hash: editing, deleting or
reordering any entry breaks every later link, and without the key nobody can
recompute the chain after a rewrite. The single ``audit_head`` row holds the
count and the last hash with a MAC of its own (the checkpoint), so cutting off
the tail and moving the head back is detected too.

Appenders lock the head row; that orders them, which is why the payment hot
path keeps its own immutable ledger entries instead.

The vault comes from the session (``session.info["vault"]``, set by the
runtime), so callers append with ``record(session, ...)`` as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.free_text import check_free_text
from qinqing.audit.models import AuditEntry, AuditHead
from qinqing.identity.vault import Vault
from qinqing.kit.clock import as_utc

GENESIS = "0" * 64


def _canonical(prev_hash: str, seq: int, fields: dict[str, Any]) -> bytes:
    return json.dumps(
        {"prev": prev_hash, "seq": seq, **fields},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    ).encode()


def digest(vault: Vault, prev_hash: str, seq: int, fields: dict[str, Any]) -> str:
    return vault.audit_mac(_canonical(prev_hash, seq, fields))


def legacy_digest(prev_hash: str, seq: int, fields: dict[str, Any]) -> str:
    """The unkeyed SHA-256 of chains written before the chain was keyed."""
    return hashlib.sha256(_canonical(prev_hash, seq, fields)).hexdigest()


def head_mac(vault: Vault, seq: int, last_hash: str) -> str:
    # A label of its own: an entry's MAC (over JSON) can never pass for a head's.
    return vault.audit_mac(f"audit head\x00{seq}\x00{last_hash}".encode())


def vault_of(session: Session) -> Vault:
    vault = session.info.get("vault")
    if not isinstance(vault, Vault):
        raise RuntimeError("the audit chain needs the runtime's vault on the session")
    return vault


_FIELD_NAMES = (
    "at",
    "actor_kind",
    "actor_id",
    "channel",
    "action",
    "subject_kind",
    "subject_id",
    "reason",
    "details",
)


def _fields(e: AuditEntry) -> dict[str, Any]:
    return {
        "at": e.at.isoformat(),
        "actor_kind": e.actor_kind,
        "actor_id": e.actor_id,
        "channel": e.channel,
        "action": e.action,
        "subject_kind": e.subject_kind,
        "subject_id": e.subject_id,
        "reason": e.reason,
        "details": e.details,
    }


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject_kind: str,
    subject_id: object,
    at: datetime,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction. ``details`` must hold no raw PII;
    ``reason`` is free text, refused when it holds a personal number (the entry can
    never be edited), which rolls the caller's whole change back."""
    check_free_text(reason)
    head = session.execute(
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    entry = AuditEntry(
        seq=head.seq + 1,
        at=as_utc(at),
        actor_kind=actor.kind,
        actor_id=actor.id,
        channel=actor.channel,
        action=action,
        subject_kind=subject_kind,
        subject_id=str(subject_id),
        reason=reason,
        details=details or {},
        prev_hash=head.hash,
        hash="",
    )
    vault = vault_of(session)
    entry.hash = digest(vault, head.hash, entry.seq, _fields(entry))
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    head.mac = head_mac(vault, entry.seq, entry.hash)
    session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class Pending:
    """One entry for :func:`record_many` (the arguments of :func:`record`)."""

    action: str
    subject_kind: str
    subject_id: object
    reason: str | None = None
    details: dict[str, Any] | None = None


def record_many(session: Session, *, actor: Actor, at: datetime, entries: Sequence[Pending]) -> int:
    """Append ``entries`` in order, as :func:`record` would one by one, under one lock
    of the head and with one insert: a registry import that changes a hundred
    thousand persons records each change without a round trip per entry. How many
    were appended."""
    if not entries:
        return 0
    for e in entries:
        check_free_text(e.reason)
    head = session.execute(
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    vault = vault_of(session)
    seq, last = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for e in entries:
        seq += 1
        row: dict[str, Any] = {
            "seq": seq,
            "at": as_utc(at),
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "channel": actor.channel,
            "action": e.action,
            "subject_kind": e.subject_kind,
            "subject_id": str(e.subject_id),
            "reason": e.reason,
            "details": e.details or {},
            "prev_hash": last,
        }
        fields = {k: row[k] for k in _FIELD_NAMES}
        fields["at"] = row["at"].isoformat()
        row["hash"] = last = digest(vault, row["prev_hash"], seq, fields)
        rows.append(row)
    session.execute(insert(AuditEntry), rows)
    head.seq, head.hash = seq, last
    head.mac = head_mac(vault, seq, last)
    session.flush()
    return len(rows)


Status = Literal["intact", "tampered", "truncated"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    checked: int
    first_bad_seq: int | None
    problem: str | None
    status: Status = "intact"
    head_seq: int = 0
    head_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def _entries(session: Session, batch: int = 5000, after: int = 0) -> Iterator[AuditEntry]:
    last = after
    while True:
        rows = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.seq > last)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify(
    session: Session, vault: Vault | None = None, *, expect: tuple[int, str] | None = None
) -> VerifyResult:
    """Walk the chain from the genesis; name the first entry that does not fit.

    ``tampered``: an entry was changed, removed or re-chained without the key.
    ``truncated``: the chain ends before the head checkpoint says it does (or the
    checkpoint itself was rewritten).

    ``expect``: a checkpoint ``(count, hash)`` printed by an earlier run and kept
    outside the database; the chain must still hold it (catches a restored older
    copy of the whole database, whose own head is consistent).
    """
    vault = vault or vault_of(session)
    prev, expected_seq, checked = GENESIS, 1, 0
    for e in _entries(session):
        if expect and e.seq == expect[0] and e.hash != expect[1]:
            return VerifyResult(
                checked, e.seq, "entry differs from the external checkpoint", "tampered"
            )
        if e.seq != expected_seq:
            return VerifyResult(checked, expected_seq, "entry missing (sequence gap)", "tampered")
        if e.prev_hash != prev:
            return VerifyResult(checked, e.seq, "previous-hash link broken", "tampered")
        if digest(vault, prev, e.seq, _fields(e)) != e.hash:
            return VerifyResult(
                checked, e.seq, "entry content does not match its keyed hash", "tampered"
            )
        prev, expected_seq, checked = e.hash, e.seq + 1, checked + 1
    head = session.get(AuditHead, 1)
    if head is None or head.mac != head_mac(vault, head.seq, head.hash):
        return VerifyResult(
            checked, expected_seq, "the head checkpoint does not verify", "truncated"
        )
    if head.seq > checked:
        return VerifyResult(
            checked,
            expected_seq,
            f"chain truncated: the checkpoint counts {head.seq} entries, {checked} remain",
            "truncated",
            head.seq,
            head.hash,
        )
    if head.seq != checked or head.hash != prev:
        return VerifyResult(checked, head.seq + 1, "entries beyond the head checkpoint", "tampered")
    if expect and checked < expect[0]:
        return VerifyResult(
            checked,
            checked + 1,
            f"chain truncated: an external checkpoint counted {expect[0]} entries, "
            f"{checked} remain",
            "truncated",
            head.seq,
            head.hash,
        )
    return VerifyResult(checked, None, None, "intact", head.seq, head.hash)


OldCheck = Callable[[str, int, dict[str, Any], str], bool]


@dataclass(slots=True)
class RechainCursor:
    """Where a re-chaining stopped: the last rewritten seq and both hashes at that point."""

    seq: int = 0
    old_prev: str = GENESIS
    new_prev: str = GENESIS


def rechain(
    session: Session, *, old_ok: OldCheck, new: Vault, cursor: RechainCursor, limit: int
) -> int:
    """Re-key up to ``limit`` entries after ``cursor`` (advanced in place); how many.

    Every entry is first proven under the old scheme (``old_ok(prev, seq, fields,
    hash)``, with the old chain's previous hash), so a chain that was already
    broken is never laundered into a valid one: :class:`ChainBroken` instead.
    Callers commit between calls (resumable from the cursor they stored).
    """
    head = session.execute(
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    done = 0
    rows = (
        session.execute(
            select(AuditEntry)
            .where(AuditEntry.seq > cursor.seq)
            .order_by(AuditEntry.seq)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    for e in rows:
        fields = _fields(e)
        if (
            e.seq != cursor.seq + 1
            or e.prev_hash != cursor.old_prev
            or not old_ok(cursor.old_prev, e.seq, fields, e.hash)
        ):
            raise ChainBroken(e.seq)
        old_hash = e.hash
        e.prev_hash = cursor.new_prev
        e.hash = digest(new, cursor.new_prev, e.seq, fields)
        cursor.seq, cursor.old_prev, cursor.new_prev = e.seq, old_hash, e.hash
        done += 1
    if done == 0:
        # Finished: the head must be where the old chain ended; then sign it anew.
        if head.seq != cursor.seq or head.hash != cursor.old_prev:
            raise ChainBroken(cursor.seq + 1)
        head.hash = cursor.new_prev
        head.mac = head_mac(new, head.seq, head.hash)
    session.flush()
    return done


class ChainBroken(Exception):
    def __init__(self, seq: int) -> None:
        super().__init__(f"the audit chain does not verify at entry #{seq}")
        self.seq = seq


def key_legacy_chain(session: Session, vault: Vault, batch: int = 5000) -> int:
    """Once, when a database first gets a key check: move an unkeyed SHA-256 chain
    (if any) to the keyed one and sign the head. How many entries were re-keyed."""
    head = session.execute(
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if head.mac is not None:
        return 0

    def legacy_ok(prev: str, seq: int, fields: dict[str, Any], h: str) -> bool:
        return legacy_digest(prev, seq, fields) == h

    cursor, total = RechainCursor(), 0
    while n := rechain(session, old_ok=legacy_ok, new=vault, cursor=cursor, limit=batch):
        total += n
    return total
