"""The counter's verification: the ID document a clerk attests must match the party.

A mismatch counts like a wrong payment password (the same limits from the
settings: ``payment_max_failures`` in a row lock it for ``payment_lock_hours``),
on the person's own counter row, and the count is committed although the
request is refused. The errors are the verification codes the unbind rules
know (``VERIFICATION_FAILED`` with ``remaining_attempts``, ``VERIFICATION_LOCKED``
with ``locked_until``), each with ``id_document`` so the messages speak of the
document, not a payment password.

Lock order: callers hold the link and the person's row; this takes the
person's ``id_document_failures`` row next (where the app path would take the
person's app account).
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth import rules
from qinqing.auth.models import IdDocumentFailures
from qinqing.kit.db import insert_ignore
from qinqing.kit.errors import DomainError
from qinqing.persons.models import Person
from qinqing.persons.service import ID_KIND
from qinqing.runtime import Runtime


def locked_until(session: Session, person_id: uuid.UUID, now: datetime) -> datetime | None:
    """Until when counter documents are locked for this person (None: not locked)."""
    row = session.get(IdDocumentFailures, person_id)
    if row is not None and rules.is_locked(row.locked_until, now):
        return row.locked_until
    return None


def _row(session: Session, person_id: uuid.UUID, now: datetime) -> IdDocumentFailures:
    insert_ignore(
        session,
        IdDocumentFailures,
        {"person_id": person_id, "failures": 0, "locked_until": None, "updated_at": now},
    )
    return session.execute(
        select(IdDocumentFailures)
        .where(IdDocumentFailures.person_id == person_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()


def verify_document(
    session: Session,
    rt: Runtime,
    person: Person,
    doc_type: rules.DocumentType,
    number: str,
    *,
    actor: Actor,
    link_id: uuid.UUID,
    now: datetime,
) -> None:
    """Return when ``number`` (already validated) is ``person``'s; else count and raise.

    Compared by the vault's blind index, in constant time: the clear number
    is never stored or logged. A mismatch is audited (``counter.id_document_mismatch``:
    who tried, on which link, with which document type) because repeated
    mismatches are what an impersonation attempt looks like.
    """
    row = session.execute(
        select(IdDocumentFailures)
        .where(IdDocumentFailures.person_id == person.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is not None and row.locked_until is not None and rules.is_locked(row.locked_until, now):
        raise DomainError(
            "VERIFICATION_LOCKED",
            423,
            locked_until=row.locked_until.isoformat(),
            id_document=doc_type,
        )
    presented = rt.vault.index(ID_KIND, number)
    if hmac.compare_digest(presented, person.id_number_index):
        if row is not None and row.failures:
            row.failures, row.locked_until, row.updated_at = 0, None, now
            session.flush()
        return
    # No row yet: create it. The caller holds the person's row, so two counter
    # verifications of one person never race here.
    row = row or _row(session, person.id, now)
    settings = rt.settings
    state = rules.after_mismatch(
        row.failures,
        now,
        max_failures=settings.payment_max_failures,
        lock_hours=settings.payment_lock_hours,
    )
    row.failures, row.locked_until, row.updated_at = state.failures, state.locked_until, now
    record(
        session,
        actor=actor,
        action="counter.id_document_mismatch",
        subject_kind="person",
        subject_id=person.id,
        at=now,
        details={
            "link_id": str(link_id),
            "id_document_type": doc_type,
            "locked": state.locked_until is not None,
        },
    )
    session.flush()
    if state.locked_until is not None:
        raise DomainError(
            "VERIFICATION_LOCKED",
            423,
            commit=True,
            locked_until=state.locked_until.isoformat(),
            id_document=doc_type,
        )
    raise DomainError(
        "VERIFICATION_FAILED",
        403,
        commit=True,
        remaining_attempts=state.remaining(settings.payment_max_failures),
        id_document=doc_type,
    )
