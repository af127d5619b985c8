"""Test helpers of the unbind tests: links written straight through the ORM.

Independent of the binding service on purpose: an unbind test states exactly
the link it needs (status, relation, activation time) without walking the
binding journey first.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.audit.models import AuditEntry
from qinqing.auth.verification import simulated_face_token
from qinqing.family.models import FamilyLink
from qinqing.family.views import pair_key
from qinqing.notify.models import Notification
from qinqing.persons.models import Person
from qinqing.runtime import Runtime
from qinqing.unbind.models import UnbindRequest
from support.accounts import PASSWORD, by_id, person_with_account

API = "/api/v1"
PIN = "135790"
WRONG_PIN = "246801"


def make_link(
    rt: Runtime,
    holder: Person,
    member: Person,
    *,
    relation: str = "spouse",
    status: str = "active",
    mutual_aid: bool = True,
    activated_at: datetime | None = None,
    region: str | None = None,
) -> FamilyLink:
    """Insert a link as the binding service would have left it."""
    now = rt.clock.now()
    with rt.db.unit_of_work() as s:
        link = FamilyLink(
            holder_id=holder.id,
            member_id=member.id,
            pair_key=pair_key(holder.id, member.id),
            relation=relation,
            mutual_aid=mutual_aid,
            mutual_aid_yearly_limit_fen=None,
            status=status,
            region_code=region or holder.region_code,
            created_at=now,
            created_by_kind="person",
            created_by_id=str(holder.id),
            created_channel="app",
            consent_required=True,
            activated_at=(activated_at or now) if status != "pending_consent" else None,
            updated_at=now,
        )
        s.add(link)
    return link


def set_pin(client: TestClient, headers: dict[str, str], pin: str = PIN) -> None:
    r = client.put(
        f"{API}/me/payment-password",
        headers=headers,
        json={"password": PASSWORD, "new_payment_password": pin},
    )
    assert r.status_code == 204, r.text


def party(
    rt: Runtime,
    client: TestClient,
    *,
    name: str,
    phone: str,
    seq: int,
    pin: str | None = PIN,
    **kw: Any,
) -> tuple[Person, dict[str, str]]:
    """A person with an app account (and a payment password unless ``pin`` is None)."""
    person, _, headers = person_with_account(rt, client, name=name, phone=phone, seq=seq, **kw)
    if pin is not None:
        set_pin(client, headers, pin)
    return person, headers


def family(
    rt: Runtime, client: TestClient, *, region: str = "150600", **link_kw: Any
) -> tuple[Person, dict[str, str], Person, dict[str, str], FamilyLink]:
    """A holder and a member, both with accounts and payment passwords, and their link."""
    holder, h_headers = party(rt, client, name="王建国", phone="13800138001", seq=11, region=region)
    member, m_headers = party(rt, client, name="李秀英", phone="13800138002", seq=12, region=region)
    link = make_link(rt, holder, member, **link_kw)
    return holder, h_headers, member, m_headers, link


def pin_verification(pin: str = PIN) -> dict[str, str]:
    return {"method": "payment_password", "payment_password": pin}


def face_verification(person_id: uuid.UUID) -> dict[str, str]:
    return {"method": "face", "face_token": simulated_face_token(person_id)}


def codes(problem: dict[str, Any]) -> list[str]:
    return [b["code"] for b in problem.get("blockers", [])]


def load_link(rt: Runtime, link_id: uuid.UUID | str) -> FamilyLink:
    with rt.db.unit_of_work() as s:
        link = by_id(s, FamilyLink, uuid.UUID(str(link_id)))
        assert link is not None
        s.expunge(link)
        return link


def count_requests(rt: Runtime, link_id: uuid.UUID | None = None) -> int:
    with rt.db.unit_of_work() as s:
        stmt = select(func.count()).select_from(UnbindRequest)
        if link_id is not None:
            stmt = stmt.where(UnbindRequest.link_id == link_id)
        return int(s.execute(stmt).scalar_one())


def audit_actions(rt: Runtime, prefix: str = "unbind.") -> list[str]:
    with rt.db.unit_of_work() as s:
        rows = s.execute(
            select(AuditEntry.action)
            .where(AuditEntry.action.like(f"{prefix}%"))
            .order_by(AuditEntry.seq)
        )
        return list(rows.scalars())


def notifications(rt: Runtime, kind_prefix: str = "unbind.") -> list[tuple[uuid.UUID, str]]:
    with rt.db.unit_of_work() as s:
        rows = s.execute(
            select(Notification.person_id, Notification.kind)
            .where(Notification.kind.like(f"{kind_prefix}%"))
            .order_by(Notification.created_at, Notification.kind)
        )
        return [(pid, kind) for pid, kind in rows.all()]
