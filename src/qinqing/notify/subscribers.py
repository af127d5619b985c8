"""The notices that other parts announce as events (plugged in at startup)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from qinqing.auth.events import AccountNotice
from qinqing.kit.events import EventBus
from qinqing.notify.service import enqueue


def _account_notice(session: Session, event: AccountNotice) -> None:
    enqueue(session, person_id=event.person_id, kind=event.kind, at=event.at, payload=event.payload)


def install(events: EventBus) -> None:
    events.subscribe(AccountNotice, _account_notice)
