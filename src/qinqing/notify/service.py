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
