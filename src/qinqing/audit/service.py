"""The append-only, hash-chained audit log (docs/guide.md §2: every state change is recorded).

Each entry's hash covers its own fields and the previous entry's hash, so
editing, deleting or reordering any entry breaks every later link. Appenders
lock the single ``audit_head`` row; that orders them, which is why the
payment hot path keeps its own immutable ledger entries instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.audit.models import AuditEntry, AuditHead
from qinqing.clock import as_utc

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # person | staff | client | operator | system
    id: str
    channel: (
        str  # app | wechat | counter | review | admin | bank | institution | collector | system
    )


SYSTEM = Actor("system", "qinqing", "system")


def _digest(prev_hash: str, seq: int, fields: dict[str, Any]) -> str:
    body = json.dumps(
        {"prev": prev_hash, "seq": seq, **fields},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


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
    """Append one entry in the caller's transaction. ``details`` must hold no raw PII."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
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
    entry.hash = _digest(head.hash, entry.seq, _fields(entry))
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class VerifyResult:
    checked: int
    first_bad_seq: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def _entries(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
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


def verify(session: Session) -> VerifyResult:
    """Walk the chain from the genesis; name the first entry that does not fit."""
    prev, expected_seq, checked = GENESIS, 1, 0
    for e in _entries(session):
        if e.seq != expected_seq:
            return VerifyResult(checked, expected_seq, "entry missing (sequence gap)")
        if e.prev_hash != prev:
            return VerifyResult(checked, e.seq, "previous-hash link broken")
        if _digest(prev, e.seq, _fields(e)) != e.hash:
            return VerifyResult(checked, e.seq, "entry content does not match its hash")
        prev, expected_seq, checked = e.hash, e.seq + 1, checked + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        return VerifyResult(checked, expected_seq, "chain truncated after the last entry")
    return VerifyResult(checked, None, None)
