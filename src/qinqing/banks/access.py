"""Who is a bank's customer: a person with an active bank link to that bank.

A bank client acts only for its customers; for anyone else every answer is
the 404 an unknown id gets. The core asks through ``Runtime.customers``, which
the startup wiring points at :func:`is_customer`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.banks.models import BankLink, BankLinkStatus


def is_customer(session: Session, bank_code: str | None, person_id: uuid.UUID | None) -> bool:
    """Whether the person holds an active bank link with the bank (by the person's shard key)."""
    if not bank_code or person_id is None:
        return False
    found = session.execute(
        select(BankLink.id)
        .where(
            BankLink.person_id == person_id,
            BankLink.bank_code == bank_code,
            BankLink.status == BankLinkStatus.active.value,
        )
        .limit(1)
    ).first()
    return found is not None


def active_links_of(session: Session, person_ids: Iterable[uuid.UUID]) -> list[BankLink]:
    """The active bank links of these persons (at most a handful each)."""
    ids = list(set(person_ids))
    if not ids:
        return []
    return list(
        session.execute(
            select(BankLink).where(
                BankLink.person_id.in_(ids), BankLink.status == BankLinkStatus.active.value
            )
        ).scalars()
    )
