"""What the quota hears from the core: a link that ends returns its unused 共济额度 to
the holder, in the transaction that ended it (an unbind, a review, the registry)."""

from __future__ import annotations

from qinqing.family.events import FamilyEvent
from qinqing.kit.events import EventBus
from qinqing.quota.service import on_family_event


def install(bus: EventBus) -> None:
    bus.subscribe(FamilyEvent, on_family_event)
