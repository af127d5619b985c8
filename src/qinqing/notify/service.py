"""Write notices into the outbox, in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from qinqing.notify.models import Notification


def enqueue(
    session: Session,
    *,
    person_id: uuid.UUID,
    kind: str,
    at: datetime,
    payload: dict[str, Any] | None = None,
) -> Notification:
    """``payload`` carries ids, codes and amounts only (it is logged by the default sender)."""
    note = Notification(
        person_id=person_id, kind=kind, payload=payload or {}, created_at=at, attempts=0
    )
    session.add(note)
    return note


def tell_both(
    session: Session,
    *,
    holder_id: uuid.UUID,
    member_id: uuid.UUID,
    kinds: tuple[str, str],
    at: datetime,
    payload: dict[str, Any],
) -> None:
    """One notice to each party of a link about the same money movement — ``kinds``
    (the holder's, the member's) — each naming the other party."""
    holder_kind, member_kind = kinds
    enqueue(
        session,
        person_id=holder_id,
        kind=holder_kind,
        at=at,
        payload={**payload, "member_id": str(member_id)},
    )
    enqueue(
        session,
        person_id=member_id,
        kind=member_kind,
        at=at,
        payload={**payload, "holder_id": str(holder_id)},
    )
