"""How a link is shown: the same shape for the app, the counter and banks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.family.access import role_in
from qinqing.family.models import FamilyLink
from qinqing.persons.models import Person
from qinqing.persons.service import person_view
from qinqing.runtime import Runtime


class PartyOut(BaseModel):
    id: str
    name: str
    id_number: str = Field(description="masked unless the caller is staff of the region")
    status: Literal["active", "arrears", "suspended", "terminated"]
    scheme: Literal["employee", "resident", "flexible"]
    region_code: str


class LinkOut(BaseModel):
    id: str
    status: Literal["pending_consent", "active", "unbinding", "ended"]
    relation: str
    mutual_aid: bool
    mutual_aid_yearly_limit_fen: int | None
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


def _party(rt: Runtime, person: Person, reveal: bool) -> PartyOut:
    v = person_view(rt.vault, person, reveal=reveal)
    return PartyOut(
        id=v["id"],
        name=v["name"],
        id_number=v["id_number"],
        status=v["status"],
        scheme=v["scheme"],
        region_code=v["region_code"],
    )


def link_out(session: Session, rt: Runtime, link: FamilyLink, principal: Principal) -> LinkOut:
    reveal = principal.kind == "staff" and principal.region_code == link.region_code
    holder = session.get(Person, link.holder_id)
    member = session.get(Person, link.member_id)
    assert holder is not None and member is not None
    role = role_in(link, principal.person_id) if principal.kind == "person" else None
    return LinkOut(
        id=str(link.id),
        status=link.status,
        relation=link.relation,
        mutual_aid=link.mutual_aid,
        mutual_aid_yearly_limit_fen=link.mutual_aid_yearly_limit_fen,
        region_code=link.region_code,
        holder=_party(rt, holder, reveal),
        member=_party(rt, member, reveal),
        your_role=role,
        consent_required=link.consent_required,
        created_at=link.created_at,
        created_channel=link.created_channel,
        activated_at=link.activated_at,
        ended_at=link.ended_at,
        ended_by_kind=link.ended_by_kind,
        ended_channel=link.ended_channel,
        end_reason=link.end_reason,
    )


def pair_key(a: uuid.UUID, b: uuid.UUID) -> str:
    lo, hi = sorted((str(a), str(b)))
    return f"{lo}:{hi}"
