"""What the banks hear from the core: every family and unbind event becomes a webhook
to the banks that have either party as customer (``webhooks.family_event``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from qinqing.banks.outbox import family_event
from qinqing.family.events import FamilyEvent
from qinqing.kit.events import EventBus


def on_family_event(session: Session, event: FamilyEvent) -> None:
    family_event(session, event.type, event.link, event.at, request=event.request)


def install(bus: EventBus) -> None:
    bus.subscribe(FamilyEvent, on_family_event)
