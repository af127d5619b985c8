"""What the family and unbind parts announce (``kit.events``): a link became active
or ended, an unbind request waits for review or was decided. Partners subscribe
(banks send their customers' webhooks); the core never calls them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from qinqing.family.models import FamilyLink

LINK_ACTIVATED = "family_link.activated"
LINK_ENDED = "family_link.ended"
UNBIND_PENDING_REVIEW = "unbind_request.pending_review"
UNBIND_DECIDED = "unbind_request.decided"


@dataclass(frozen=True, slots=True)
class UnbindRef:
    """What a family event says about an unbind request (ids and codes only)."""

    id: uuid.UUID
    status: str
    on_behalf_of: str
    channel: str


@dataclass(frozen=True, slots=True)
class FamilyEvent:
    """Something happened to a link; published in the transaction that did it."""

    type: str  # one of the four names above
    link: FamilyLink
    at: datetime
    request: UnbindRef | None = None
