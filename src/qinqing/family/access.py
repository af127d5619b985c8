"""Who may see or act on a link (docs/guide.md §5.1).

A person sees only links they are a party to; staff only links of their
region; a bank client only links where a party is its customer (an active
bank link with its bank); other API clients only links in their region.
Anything else answers 404 exactly as an unknown id does, revealing nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.access.roles import is_bank_client
from qinqing.family.models import PENDING_STATUSES, FamilyLink, FamilyLinkMember
from qinqing.kit.errors import not_found
from qinqing.runtime import Runtime


def parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise not_found("link") from None


def role_in(link: FamilyLink, person_id: uuid.UUID | None) -> str | None:
    if person_id is None:
        return None
    if link.holder_id == person_id:
        return "holder"
    if link.member_id == person_id:
        return "member"
    return None


def may_see(link: FamilyLink, principal: Principal) -> bool:
    """Without the database: a bank client's reach is decided by :func:`load_link`."""
    if principal.kind == "person":
        return role_in(link, principal.person_id) is not None
    if is_bank_client(principal):
        return True
    return principal.region_code == link.region_code


def bank_reaches(session: Session, rt: Runtime, principal: Principal, link: FamilyLink) -> bool:
    """A bank client reaches a link through a party that is its customer."""
    return any(
        rt.customers(session, principal.bank_code, pid) for pid in (link.holder_id, link.member_id)
    )


def load_link(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str | uuid.UUID,
    *,
    lock: bool = False,
) -> FamilyLink:
    """The link if the caller may see it (row-locked when asked), else NOT_FOUND."""
    lid = link_id if isinstance(link_id, uuid.UUID) else parse_id(link_id)
    holder_id = holder_of(session, principal, lid)
    if holder_id is None:
        raise not_found("link")
    stmt = select(FamilyLink).where(FamilyLink.holder_id == holder_id, FamilyLink.id == lid)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    link = session.execute(stmt).scalar_one_or_none()
    if link is None or not may_see(link, principal):
        raise not_found("link")
    if is_bank_client(principal) and not bank_reaches(session, rt, principal, link):
        raise not_found("link")
    return link


def load_usable_link(
    session: Session, rt: Runtime, principal: Principal, link_id: str | uuid.UUID
) -> FamilyLink:
    """As :func:`load_link`, for what a link lets its parties do (the member's
    e-voucher, the payments and costs on it): a link still waiting for consent or
    proof allows nothing, and answers the 404 an unknown id gets, to its holder too."""
    link = load_link(session, rt, principal, link_id)
    if link.status in PENDING_STATUSES:
        raise not_found("link")
    return link


def holder_of(session: Session, principal: Principal, link_id: uuid.UUID) -> uuid.UUID | None:
    """The holder of a link, found without a lock, so the link can then be read and
    locked on the holder's shard by (holder, id). A person looks among their own
    links as holder, then through the member-side index; staff and clients, whose
    look-ups are rare, search every shard for the id."""
    if principal.kind == "person":
        me = principal.person_id
        if me is None:
            return None
        own = session.execute(
            select(FamilyLink.holder_id).where(FamilyLink.holder_id == me, FamilyLink.id == link_id)
        ).scalar_one_or_none()
        if own is not None:
            return own
        return session.execute(
            select(FamilyLinkMember.holder_id).where(
                FamilyLinkMember.member_id == me, FamilyLinkMember.link_id == link_id
            )
        ).scalar_one_or_none()
    return session.execute(
        select(FamilyLink.holder_id).where(FamilyLink.id == link_id)
    ).scalar_one_or_none()


def links_of(
    session: Session, person_ids: Iterable[uuid.UUID], *where: ColumnElement[bool]
) -> list[FamilyLink]:
    """The links (filtered by ``where``) in which any of the persons is holder or
    member: as holder read on their own shard; as member through
    ``family_link_members``, then read by (holder, id). No row is locked."""
    ids = sorted(set(person_ids), key=str)
    if not ids:
        return []
    found: dict[uuid.UUID, FamilyLink] = {}
    for link in session.execute(
        select(FamilyLink).where(FamilyLink.holder_id.in_(ids), *where)
    ).scalars():
        found[link.id] = link
    keys: list[Any] = [
        tuple(row)
        for row in session.execute(
            select(FamilyLinkMember.holder_id, FamilyLinkMember.link_id).where(
                FamilyLinkMember.member_id.in_(ids)
            )
        )
        if row.link_id not in found
    ]
    if keys:
        for link in session.execute(
            select(FamilyLink).where(
                FamilyLink.holder_id.in_({k[0] for k in keys}),
                tuple_(FamilyLink.holder_id, FamilyLink.id).in_(keys),
                *where,
            )
        ).scalars():
            found[link.id] = link
    return list(found.values())


def lock_link_shared(session: Session, link: FamilyLink) -> FamilyLink:
    """The link again, ``FOR SHARE`` by (holder, id): an unbind (``FOR NO KEY
    UPDATE``) cannot end it while a payment-like write on it is in flight."""
    return session.execute(
        select(FamilyLink)
        .where(FamilyLink.holder_id == link.holder_id, FamilyLink.id == link.id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    ).scalar_one()
