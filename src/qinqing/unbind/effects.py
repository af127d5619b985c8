"""What an unbind's end or decision does besides the link's own row: the link ends
with who/when/why, both parties are notified, and the partners hear of it
(``family.events``). Shared by the submission (``unbind.service``) and the
review (``unbind.review``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from qinqing.family.events import (
    LINK_ENDED,
    UNBIND_DECIDED,
    UNBIND_PENDING_REVIEW,
    FamilyEvent,
    UnbindRef,
)
from qinqing.family.models import FamilyLink, LinkStatus
from qinqing.notify.service import enqueue
from qinqing.runtime import Runtime
from qinqing.unbind.models import RequestStatus, UnbindRequest


def announce(
    session: Session, rt: Runtime, link: FamilyLink, request: UnbindRequest, at: datetime
) -> None:
    """The events partners hear of: the request's state, and the link's end if it ended."""
    ref = UnbindRef(request.id, request.status, request.on_behalf_of, request.channel)
    if request.status == RequestStatus.pending_review:
        rt.events.publish(session, FamilyEvent(UNBIND_PENDING_REVIEW, link, at, ref))
    elif request.status in (RequestStatus.approved, RequestStatus.rejected):
        rt.events.publish(session, FamilyEvent(UNBIND_DECIDED, link, at, ref))
    if link.status == LinkStatus.ended:
        rt.events.publish(session, FamilyEvent(LINK_ENDED, link, at, ref))


def notify_parties(
    session: Session, link: FamilyLink, request: UnbindRequest, kind: str, at: datetime
) -> None:
    for role, person_id in (("holder", link.holder_id), ("member", link.member_id)):
        enqueue(
            session,
            person_id=person_id,
            kind=kind,
            at=at,
            payload={
                "link_id": str(link.id),
                "request_id": str(request.id),
                "your_role": role,
                "initiated_by": request.on_behalf_of,
                "status": request.status,
            },
        )
