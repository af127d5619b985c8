"""Who may see or act on a link (SPEC §5, issue 3 "Authorization").

A person sees only links they are a party to; staff only links of their
region; API clients only links in their region, and a bank client only what
concerns its own customers (:func:`is_bank_customer`). Anything else answers
404 exactly as an unknown id does, revealing nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.auth.principal import Principal
from qinqing.errors import not_found
from qinqing.family.models import FamilyLink


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
    if principal.kind == "person":
        return role_in(link, principal.person_id) is not None
    return principal.region_code == link.region_code


def is_bank_customer(session: Session, principal: Principal, person_id: uuid.UUID) -> bool:
    """Whether the person is a customer of the calling bank client: holds an active
    bank association (医保关联) with the client's bank.

    The bank association is not stored yet, so nobody is anyone's customer: a
    bank gets, for every party, the answer an unknown link gets (404). The bank
    channel's own work replaces this body with the look-up.
    """
    del session, principal, person_id  # what that look-up will use
    return False


def load_link(
    session: Session, principal: Principal, link_id: str | uuid.UUID, *, lock: bool = False
) -> FamilyLink:
    """The link if the caller may see it (row-locked when asked), else NOT_FOUND."""
    lid = link_id if isinstance(link_id, uuid.UUID) else parse_id(link_id)
    stmt = select(FamilyLink).where(FamilyLink.id == lid)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    link = session.execute(stmt).scalar_one_or_none()
    if link is None or not may_see(link, principal):
        raise not_found("link")
    return link
