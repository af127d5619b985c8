"""The unbind requests: who may see one, and the reviewer's queue and decision
(``unbind_review = "manual"``, docs/guide.md §3). Lock order as the submission's:
the link, then the request."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.access.roles import is_bank_client, require_reviewer
from qinqing.audit.service import record
from qinqing.family.access import role_in
from qinqing.family.models import FamilyLink, LinkStatus
from qinqing.family.service import end_link
from qinqing.kit.errors import DomainError, not_found
from qinqing.runtime import Runtime
from qinqing.unbind.effects import announce, notify_parties
from qinqing.unbind.models import RequestStatus, UnbindRequest
from qinqing.unbind.service import LINK_SUBJECT, UnbindOutcome


def _parse_request_id(raw: str | uuid.UUID) -> uuid.UUID:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise not_found("unbind_request") from None


def peek_request(session: Session, request_id: uuid.UUID) -> UnbindRequest | None:
    """A request by its id alone, unlocked: it names its holder, by which it is then
    read or locked on its shard. (Requests are looked up by id only by reviewers
    and the parties' own screens, so a search of every shard is acceptable.)"""
    return session.execute(
        select(UnbindRequest).where(UnbindRequest.id == request_id)
    ).scalar_one_or_none()


def pending_review(session: Session, link: FamilyLink) -> UnbindRequest | None:
    """The unbind request waiting for review on this link (its status is ``unbinding``)."""
    return session.execute(
        select(UnbindRequest).where(
            UnbindRequest.holder_id == link.holder_id,
            UnbindRequest.link_id == link.id,
            UnbindRequest.status == RequestStatus.pending_review.value,
        )
    ).scalar_one_or_none()


def may_see_request(session: Session, principal: Principal, request: UnbindRequest) -> bool:
    if principal.kind == "person":
        link = session.get(FamilyLink, (request.holder_id, request.link_id))
        return link is not None and role_in(link, principal.person_id) is not None
    if principal.kind == "staff":
        return principal.region_code == request.region_code
    # A client sees the requests it made itself (a bank: wherever its customer's link is).
    return (
        (is_bank_client(principal) or principal.region_code == request.region_code)
        and request.actor_kind == "client"
        and request.actor_id == principal.id
    )


def get_request(
    session: Session, principal: Principal, request_id: str | uuid.UUID
) -> tuple[UnbindRequest, FamilyLink]:
    """One request and its link, if the caller may see it (else NOT_FOUND)."""
    request = peek_request(session, _parse_request_id(request_id))
    if request is None or not may_see_request(session, principal, request):
        raise not_found("unbind_request")
    link = session.get(FamilyLink, (request.holder_id, request.link_id))
    assert link is not None
    return request, link


def review_queue(
    session: Session,
    principal: Principal,
    *,
    status: RequestStatus = RequestStatus.pending_review,
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[tuple[UnbindRequest, FamilyLink]], int]:
    """A reviewer's region's requests in ``status``, oldest first: one page and the total."""
    region = require_reviewer(principal)
    where = (UnbindRequest.region_code == region, UnbindRequest.status == status.value)
    total = session.execute(
        select(func.count()).select_from(UnbindRequest).where(*where)
    ).scalar_one()
    rows = session.execute(
        select(UnbindRequest, FamilyLink)
        .join(
            FamilyLink,
            (FamilyLink.holder_id == UnbindRequest.holder_id)
            & (FamilyLink.id == UnbindRequest.link_id),
        )
        .where(*where)
        .order_by(UnbindRequest.created_at, UnbindRequest.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [(r, link) for r, link in rows], int(total)


def decide(
    session: Session,
    rt: Runtime,
    principal: Principal,
    request_id: str | uuid.UUID,
    decision: Literal["approve", "reject"],
    comment: str | None = None,
) -> UnbindOutcome:
    """A reviewer of the request's region approves (the link ends) or rejects it
    (the link is active again). Either way both parties are notified."""
    region = require_reviewer(principal)
    rid = _parse_request_id(request_id)
    peek = peek_request(session, rid)
    if peek is None or peek.region_code != region:
        raise not_found("unbind_request")
    if decision == "reject" and not (comment and comment.strip()):
        raise DomainError("COMMENT_REQUIRED", 422)
    # Lock order: the link, then the request.
    link = session.execute(
        select(FamilyLink)
        .where(FamilyLink.holder_id == peek.holder_id, FamilyLink.id == peek.link_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()
    request = session.execute(
        select(UnbindRequest)
        .where(UnbindRequest.holder_id == peek.holder_id, UnbindRequest.id == rid)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if request.status != RequestStatus.pending_review or link.status != LinkStatus.unbinding:
        raise DomainError("REQUEST_NOT_PENDING", 409, request_status=request.status)
    now = rt.clock.now()
    request.decided_at = now
    request.decided_by = principal.id
    request.decision_comment = comment
    if decision == "approve":
        request.status = RequestStatus.approved
        end_link(
            link,
            by_kind=request.actor_kind,
            by_id=request.actor_id,
            channel=request.channel,
            reason=request.reason,
            at=now,
        )
        action, kind = "unbind.review.approved", "unbind.approved"
    else:
        request.status = RequestStatus.rejected
        link.status = LinkStatus.active
        link.updated_at = now
        action, kind = "unbind.review.rejected", "unbind.rejected"
    # Before the audit entry: a subscriber may lock the holder's accounts (the
    # unused quota returns), and the audit head is always the last lock.
    announce(session, rt, link, request, now)
    record(
        session,
        actor=principal.actor,
        action=action,
        subject_kind=LINK_SUBJECT,
        subject_id=link.id,
        at=now,
        reason=comment,
        details={"request_id": str(request.id), "region_code": link.region_code},
    )
    notify_parties(session, link, request, kind, now)
    session.flush()
    return UnbindOutcome(request=request, link=link)
