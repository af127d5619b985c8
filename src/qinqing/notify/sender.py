"""Draining the outbox: a sender interface, the default log sender, ``deliver``.

``deliver`` takes undelivered notices oldest first (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so several workers never send one notice twice), hands each
to the sender, and marks it delivered. A notice whose send fails stays
undelivered for the next run; after ``MAX_ATTEMPTS`` it is left alone for an
operator to look at.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.kit.clock import as_utc
from qinqing.kit.locking import claim
from qinqing.notify.models import Notification
from qinqing.runtime import Runtime

log = logging.getLogger("qinqing.notify")

MAX_ATTEMPTS = 10


class Sender(Protocol):
    """Sends one notice (SMS, push, in-app...); raises when it could not."""

    def send(self, note: Notification) -> None: ...


class LogSender:
    """The default: one log line per notice, with kind and ids only (no PII)."""

    def send(self, note: Notification) -> None:
        log.info("notice %s id=%s person=%s", note.kind, note.id, note.person_id)


def deliver(
    rt: Runtime,
    limit: int = 500,
    *,
    sender: Sender | None = None,
    actor: Actor | None = None,
) -> int:
    """Send up to ``limit`` undelivered notices in one transaction; how many were sent.

    With ``actor`` (the CLI's operator) a run that delivered anything is audited.
    """
    sender = sender or LogSender()
    delivered = 0
    with rt.db.unit_of_work() as session:
        notes = claim(
            session,
            select(Notification)
            .where(Notification.delivered_at.is_(None), Notification.attempts < MAX_ATTEMPTS)
            .order_by(Notification.created_at, Notification.id),
            [Notification.person_id, Notification.id],
            limit,
        )
        now = rt.clock.now()
        for note in notes:
            note.attempts += 1
            try:
                sender.send(note)
            except Exception:
                log.warning(
                    "notice %s id=%s not sent (attempt %d)", note.kind, note.id, note.attempts
                )
                continue
            note.delivered_at = now
            delivered += 1
        if actor is not None and delivered:
            record(
                session,
                actor=actor,
                action="notify.deliver",
                subject_kind="notifications",
                subject_id="outbox",
                at=now,
                details={"delivered": delivered},
            )
    return delivered


def waiting(session: Session) -> tuple[int, datetime | None]:
    """Notices still to send (not given up on) and when the oldest was written: the
    outbox metrics (``qinqing_outbox_depth{outbox="notifications"}``)."""
    count, oldest = session.execute(
        select(func.count(), func.min(Notification.created_at)).where(
            Notification.delivered_at.is_(None), Notification.attempts < MAX_ATTEMPTS
        )
    ).one()
    return int(count), as_utc(oldest) if oldest is not None else None
