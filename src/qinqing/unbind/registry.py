"""Links the registry ends (docs/guide.md §3.3, docs/unbind.md).

A re-import of the registry (``persons import``) announces the persons it changed
(``persons.events``); here, in the same transaction:

* a holder whose insurance moved to another region, or ended (``terminated``),
  loses their cross-region links (``FamilyLink.via_quota``: mutual aid through a
  共济额度, which only holds while the holder stays insured where it was set up);
* a person who died (``deceased``) loses every open link, as holder and as member,
  whatever its state (waiting for consent or proof, active, under unbind review:
  the request waiting for review is closed, ``RequestStatus.closed``).

Each link ends through ``family.service.end_link`` (by the system, id and channel
``registry``, with the reason in English), both parties get a
``link.ended_by_registry`` notice, and ``FamilyEvent(LINK_ENDED)`` is published
(banks' webhooks, the quota's refund). Lock order (docs/ledger.md): the links and
their waiting unbind requests are locked when the change is announced
(``PersonsChanging``), before the persons' rows; then the ledger accounts of the
holders whose quotas return; this part's audit entries are written after every
link has ended and every ``LINK_ENDED`` has been heard (a quota's return appends
its own), so the audit head stays the last lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.service import Pending, record_many
from qinqing.family.access import links_of
from qinqing.family.events import LINK_ENDED, FamilyEvent
from qinqing.family.models import OPEN_STATUSES, FamilyLink, LinkStatus
from qinqing.family.service import end_link
from qinqing.kit.events import EventBus
from qinqing.kit.locking import locked
from qinqing.ledger.accounts import lock_accounts
from qinqing.notify.service import enqueue
from qinqing.persons.events import PersonChanged, PersonsChanged, PersonsChanging
from qinqing.persons.models import PersonStatus
from qinqing.unbind.models import RequestStatus, UnbindRequest
from qinqing.unbind.service import LINK_SUBJECT

REGISTRY = Actor("system", "registry", "registry")
NOTICE = "link.ended_by_registry"
# cause -> the link's end reason (English, as every end reason)
REASONS = {
    "holder_moved": "holder's insurance moved to another region",
    "holder_terminated": "holder's insurance terminated",
    "holder_deceased": "holder deceased",
    "member_deceased": "member deceased",
}
_OPEN = [s.value for s in OPEN_STATUSES]
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Ending:
    link: FamilyLink
    cause: str


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]


def _sorted(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    return sorted(set(ids), key=str)


def _who(changes: Iterable[PersonChanged]) -> tuple[set[uuid.UUID], dict[uuid.UUID, str]]:
    """The persons who died, and the holders whose cross-region links end (-> cause)."""
    deceased: set[uuid.UUID] = set()
    moved: dict[uuid.UUID, str] = {}
    for change in changes:
        status = change.new("status")
        if status == PersonStatus.deceased:
            deceased.add(change.person_id)
        elif status == PersonStatus.terminated:
            moved[change.person_id] = "holder_terminated"
        elif "region_code" in change.fields:
            moved[change.person_id] = "holder_moved"
    return deceased, moved


def _endings(session: Session, changes: Iterable[PersonChanged]) -> list[Ending]:
    """The open links these changes end, with why; in (holder, id) order."""
    deceased, moved = _who(changes)
    found: dict[uuid.UUID, FamilyLink] = {}
    for batch in _batches(_sorted(deceased)):
        for link in links_of(session, batch, FamilyLink.status.in_(_OPEN)):
            found[link.id] = link
    for batch in _batches(_sorted(moved)):
        for link in session.execute(
            select(FamilyLink).where(
                FamilyLink.holder_id.in_(batch),
                FamilyLink.via_quota.is_(True),
                FamilyLink.status.in_(_OPEN),
            )
        ).scalars():
            found[link.id] = link
    out = []
    for link in found.values():
        if link.holder_id in deceased:
            cause = "holder_deceased"
        elif link.member_id in deceased:
            cause = "member_deceased"
        else:
            cause = moved[link.holder_id]
        out.append(Ending(link, cause))
    out.sort(key=lambda e: (str(e.link.holder_id), str(e.link.id)))
    return out


def _key(link: FamilyLink) -> tuple[uuid.UUID, uuid.UUID]:
    return (link.holder_id, link.id)


def _lock(session: Session, endings: Sequence[Ending]) -> dict[uuid.UUID, FamilyLink]:
    """Lock the links FOR NO KEY UPDATE in (holder, id) order, then their unbind
    requests waiting for review (the review's order: link, then request); the
    links as they are now, by id."""
    out: dict[uuid.UUID, FamilyLink] = {}
    keys = [_key(e.link) for e in endings]
    for batch in _batches(keys):
        one_by_one: list[ColumnElement[bool]] = [
            (FamilyLink.holder_id == h) & (FamilyLink.id == i) for h, i in batch
        ]
        stmt = (
            select(FamilyLink)
            .order_by(FamilyLink.holder_id, FamilyLink.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        for row in locked(
            session, stmt, tuple_(FamilyLink.holder_id, FamilyLink.id).in_(batch), one_by_one
        ):
            out[row[0].id] = row[0]
    unbinding = [k for k in keys if out[k[1]].status == LinkStatus.unbinding]
    for batch in _batches(unbinding):
        requests = (
            select(UnbindRequest)
            .where(UnbindRequest.status == RequestStatus.pending_review.value)
            .order_by(UnbindRequest.holder_id, UnbindRequest.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        locked(
            session,
            requests,
            tuple_(UnbindRequest.holder_id, UnbindRequest.link_id).in_(batch),
            [(UnbindRequest.holder_id == h) & (UnbindRequest.link_id == i) for h, i in batch],
        )
    return out


def _waiting_request(session: Session, link: FamilyLink) -> UnbindRequest | None:
    return session.execute(
        select(UnbindRequest).where(
            UnbindRequest.holder_id == link.holder_id,
            UnbindRequest.link_id == link.id,
            UnbindRequest.status == RequestStatus.pending_review.value,
        )
    ).scalar_one_or_none()


def lock_links(session: Session, event: PersonsChanging) -> None:
    """Before the persons' rows are locked: the links the planned changes end."""
    _lock(session, _endings(session, event.changes))


def end_links(session: Session, bus: EventBus, event: PersonsChanged) -> list[FamilyLink]:
    """End the links the changes end (see the module docstring); the links ended."""
    endings = _endings(session, event.changes)
    links = _lock(session, endings)
    # A quota's return (a LINK_ENDED subscriber) locks its holder's ledger accounts
    # and appends to the audit chain: lock every such holder's accounts now, in
    # ascending id, so that no account is locked after the first audit entry.
    quota_holders = {
        links[e.link.id].holder_id
        for e in endings
        if links[e.link.id].via_quota and links[e.link.id].status in _OPEN
    }
    for batch in _batches(_sorted(quota_holders)):
        lock_accounts(session, batch)
    at = event.at
    done: list[tuple[FamilyLink, str, str, UnbindRequest | None]] = []
    for ending in endings:
        link = links[ending.link.id]
        if link.status not in _OPEN:  # pragma: no cover - ended meanwhile (we hold the lock)
            continue
        previous = link.status
        request = _waiting_request(session, link) if previous == LinkStatus.unbinding else None
        reason = REASONS[ending.cause]
        end_link(link, by_kind="system", by_id="registry", channel="registry", reason=reason, at=at)
        if request is not None:
            request.status = RequestStatus.closed.value
            request.decided_at = at
            request.decided_by = "registry"
            request.decision_comment = reason
        for role, person_id in (("holder", link.holder_id), ("member", link.member_id)):
            enqueue(
                session,
                person_id=person_id,
                kind=NOTICE,
                at=at,
                payload={"link_id": str(link.id), "your_role": role, "cause": ending.cause},
            )
        session.flush()
        bus.publish(session, FamilyEvent(LINK_ENDED, link, at))
        done.append((link, ending.cause, previous, request))
    # The audit head is the last lock: taken once every link has ended and every
    # subscriber of LINK_ENDED (a quota's refund locks ledger accounts) has run.
    entries = []
    for link, cause, previous, request in done:
        details: dict[str, Any] = {"cause": cause, "previous_status": previous}
        if request is not None:
            details["closed_request_id"] = str(request.id)
        entries.append(
            Pending(
                action="family.ended_by_registry",
                subject_kind=LINK_SUBJECT,
                subject_id=link.id,
                reason=REASONS[cause],
                details=details,
            )
        )
    record_many(session, actor=REGISTRY, at=at, entries=entries)
    return [link for link, *_ in done]


def install(bus: EventBus) -> None:
    bus.subscribe(PersonsChanging, lock_links)
    bus.subscribe(PersonsChanged, lambda session, event: end_links(session, bus, event))
