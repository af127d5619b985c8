"""Domain events, delivered to their subscribers inside the publisher's transaction.

A domain announces what happened (a family link became active, ended, an
unbind waits for review) without knowing who cares: a partner's package
subscribes at startup (``entrypoints.bootstrap``) and writes its own outbox
rows in the same unit of work, so an event's effects exist exactly when the
change that caused it committed. Handlers run in subscription order; one that
raises fails the publisher's transaction, as any write in it would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

E = TypeVar("E")
Handler = Callable[[Session, Any], object]


class EventBus:
    """Event type -> handlers ``(session, event) -> anything``."""

    def __init__(self) -> None:
        self._handlers: defaultdict[type, list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[Session, E], object]) -> None:
        self._handlers[event_type].append(handler)

    def publish(self, session: Session, event: object) -> None:
        for handler in self._handlers.get(type(event), ()):
            handler(session, event)

    def subscribers(self, event_type: type) -> int:
        return len(self._handlers.get(event_type, ()))
