"""Test helpers of the counter tests (plain functions, no fixtures).

Persons at the counter usually have no app account: ``counter_family`` makes
a holder and a member straight in the registry (with registry phones) and an
active link between them, without any login.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select

from qinqing.audit.models import AuditEntry
from qinqing.persons.models import Person
from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_person, add_staff, id_number, login
from support.unbind import make_link

API = "/api/v1"
COUNTER = f"{API}/counter"
AREA = {"150600": "150602", "440100": "440106", "110000": "110101", "500000": "500103"}


@dataclass(frozen=True)
class CounterFamily:
    holder: Person
    holder_number: str
    holder_phone: str
    member: Person
    member_number: str
    link_id: uuid.UUID


def counter_family(
    rt: Runtime,
    *,
    region: str = "150600",
    seq: int = 1,
    member_region: str | None = None,
    relation: str = "spouse",
    status: str = "active",
) -> CounterFamily:
    """王建国 (holder, employee) and his spouse 李秀英 (member), no app accounts."""
    area = AREA[region]
    holder_phone = f"1380013{seq:04d}"
    holder, hnum = add_person(
        rt,
        name="王建国",
        number=id_number(area=area, born=date(1956, 3, 3), seq=seq, sex="M"),
        region=region,
        phone=holder_phone,
    )
    m_region = member_region or region
    member, mnum = add_person(
        rt,
        name="李秀英",
        number=id_number(area=AREA[m_region], born=date(1958, 5, 5), seq=seq, sex="F"),
        region=m_region,
        scheme="resident",
        phone=None,
    )
    link = make_link(rt, holder, member, relation=relation, status=status)
    return CounterFamily(holder, hnum, holder_phone, member, mnum, link.id)


def clerk(rt: Runtime, client: TestClient, username: str, region: str = "150600") -> dict[str, str]:
    return staff(rt, client, username, "clerk", region)


def staff(rt: Runtime, client: TestClient, username: str, role: str, region: str) -> dict[str, str]:
    add_staff(rt, username, role, region)
    return login(client, username, STAFF_PASSWORD)


def lookup(
    client: TestClient, headers: dict[str, str], number: str, reason: str | None = None
) -> Any:
    body: dict[str, Any] = {"id_number": number}
    if reason is not None:
        body["reason"] = reason
    return client.post(f"{COUNTER}/lookup", headers=headers, json=body)


def unbind_body(
    link_id: object,
    number: str,
    *,
    on_behalf_of: str = "holder",
    doc_type: str = "resident_id",
    form_number: str = "QQ-2026-000123",
    reason: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "link_id": str(link_id),
        "on_behalf_of": on_behalf_of,
        "id_document": {"type": doc_type, "number": number},
        "form_number": form_number,
    }
    if reason is not None:
        body["reason"] = reason
    return body


def counter_unbind(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], key: str | None = None
) -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(f"{COUNTER}/unbind", headers={**headers, **extra}, json=body)


def bind_body(
    holder_number: str,
    holder_name: str,
    member_number: str,
    member_name: str,
    *,
    relation: str = "spouse",
    mutual_aid: bool = False,
    yearly_limit_fen: int | None = None,
    form_number: str = "QQ-BIND-0001",
    holder_type: str = "resident_id",
    member_type: str = "resident_id",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "holder_id_document": {"type": holder_type, "number": holder_number, "name": holder_name},
        "member_id_document": {"type": member_type, "number": member_number, "name": member_name},
        "relation": relation,
        "mutual_aid": mutual_aid,
        "form_number": form_number,
    }
    if yearly_limit_fen is not None:
        body["mutual_aid_yearly_limit_fen"] = yearly_limit_fen
    return body


def counter_bind(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], key: str | None = None
) -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(f"{COUNTER}/bind", headers={**headers, **extra}, json=body)


def receipt_url(request_id: str) -> str:
    return f"{COUNTER}/unbind-requests/{request_id}/receipt.pdf"


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def audit_entries(rt: Runtime, action: str) -> list[AuditEntry]:
    with rt.db.unit_of_work() as s:
        rows = list(
            s.execute(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            ).scalars()
        )
        for row in rows:
            s.expunge(row)
        return rows
