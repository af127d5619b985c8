"""How a link is shown: the same shape for the app, the counter and banks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.family.access import role_in
from qinqing.family.models import FamilyLink, LinkProof, LinkStatus
from qinqing.persons.models import Person
from qinqing.persons.service import person_view
from qinqing.runtime import Runtime


class PartyOut(BaseModel):
    """A party of a link. The other party's internal id and live status, scheme and
    region are shown only while the link is in force (active or unbinding): before
    the member consents (or the guardianship is proven) the holder sees only what
    they typed, and after the link ends neither side sees the other's."""

    id: str | None = Field(description="null where the caller may not see it (see above)")
    name: str
    id_number: str = Field(
        description="masked, except for a clerk of the link's region on a look-up or a "
        "read of the link through the API (each such read audited)"
    )
    status: Literal["active", "arrears", "suspended", "terminated", "deceased"] | None
    scheme: Literal["employee", "resident", "flexible"] | None
    region_code: str | None


class LinkOut(BaseModel):
    id: str
    status: Literal["pending_consent", "pending_proof", "active", "unbinding", "ended"]
    relation: str
    mutual_aid: bool
    mutual_aid_yearly_limit_fen: int | None
    via_quota: bool = Field(
        description="the member is insured beyond the holder's mutual-aid scope: mutual aid "
        "only through the link's 共济额度 (GET /family/links/{id}/quota)"
    )
    region_code: str
    holder: PartyOut
    member: PartyOut
    your_role: Literal["holder", "member"] | None = Field(
        description="the caller's side of the link, for persons"
    )
    consent_required: bool
    created_at: datetime
    created_channel: str
    activated_at: datetime | None
    ended_at: datetime | None
    ended_by_kind: str | None
    ended_channel: str | None
    end_reason: str | None
    proof_status: Literal["pending", "approved", "rejected"] | None = Field(
        default=None,
        description="for a link that needed guardianship proof: its latest proof's status",
    )


def _party(rt: Runtime, person: Person, reveal: bool, *, live: bool) -> PartyOut:
    """``live``: the caller may see the party's id, status, scheme and region."""
    v = person_view(rt.vault, person, reveal=reveal)
    return PartyOut(
        id=v["id"] if live else None,
        name=v["name"],
        id_number=v["id_number"],
        status=v["status"] if live else None,
        scheme=v["scheme"] if live else None,
        region_code=v["region_code"] if live else None,
    )


def may_reveal(principal: Principal, link: FamilyLink) -> bool:
    """Full ID numbers are a clerk's, for the persons of their region's links: the
    counter checks a document against them. Reviewers and admins see them masked."""
    return (
        principal.kind == "staff"
        and principal.role == "clerk"
        and principal.region_code == link.region_code
    )


def link_out(
    session: Session,
    rt: Runtime,
    link: FamilyLink,
    principal: Principal,
    *,
    reveal: bool = False,
) -> LinkOut:
    """``reveal``: the caller asked to see full ID numbers and the read is audited by
    the caller (an API read or a POSTed look-up); it counts only where
    :func:`may_reveal` allows. Every page a GET shows is masked."""
    reveal = reveal and may_reveal(principal, link)
    holder = session.get(Person, link.holder_id)
    member = session.get(Person, link.member_id)
    assert holder is not None and member is not None
    role = role_in(link, principal.person_id) if principal.kind == "person" else None
    # A party always sees themselves; the other side only while the link is in force.
    in_force = link.status in (LinkStatus.active, LinkStatus.unbinding)
    sees_holder = principal.kind != "person" or role == "holder" or in_force
    sees_member = principal.kind != "person" or role == "member" or in_force
    proof = latest_proof_status(session, link)
    return LinkOut(
        id=str(link.id),
        status=link.status,
        relation=link.relation,
        mutual_aid=link.mutual_aid,
        mutual_aid_yearly_limit_fen=link.mutual_aid_yearly_limit_fen,
        via_quota=link.via_quota,
        region_code=link.region_code,
        holder=_party(rt, holder, reveal, live=sees_holder),
        member=_party(rt, member, reveal, live=sees_member),
        your_role=role,
        consent_required=link.consent_required,
        created_at=link.created_at,
        created_channel=link.created_channel,
        activated_at=link.activated_at,
        ended_at=link.ended_at,
        ended_by_kind=link.ended_by_kind,
        ended_channel=link.ended_channel,
        end_reason=link.end_reason,
        proof_status=proof,
    )


def latest_proof_status(session: Session, link: FamilyLink) -> Any:
    """The newest guardianship proof's status, for links that needed one."""
    if link.consent_required or link.created_at is None:
        return None
    return session.execute(
        select(LinkProof.status)
        .where(LinkProof.holder_id == link.holder_id, LinkProof.link_id == link.id)
        .order_by(LinkProof.created_at.desc(), LinkProof.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def pair_key(a: uuid.UUID, b: uuid.UUID) -> str:
    lo, hi = sorted((str(a), str(b)))
    return f"{lo}:{hi}"
