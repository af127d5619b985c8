"""The webhook event types a bank can receive: the outbox's list, the family events
the banks subscribe to, and the table a bank's developers read in docs/banks.md
name the same types."""

from __future__ import annotations

import re
from pathlib import Path

from qinqing.banks.outbox import EVENT_TYPES
from qinqing.family import events

BANKS_DOC = Path(__file__).resolve().parents[2] / "docs" / "banks.md"


def test_the_documented_event_types_are_the_outboxs() -> None:
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", BANKS_DOC.read_text("utf-8"), re.M)
    assert sorted(rows) == sorted(EVENT_TYPES)


def test_every_family_event_reaches_the_banks_as_a_known_type() -> None:
    announced = {
        events.LINK_ACTIVATED,
        events.LINK_ENDED,
        events.UNBIND_PENDING_REVIEW,
        events.UNBIND_DECIDED,
    }
    assert announced <= set(EVENT_TYPES)
