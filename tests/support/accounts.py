"""Test helpers for persons, accounts and tokens (plain functions, no fixtures)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.auth import service as auth
from qinqing.auth.sms import SIMULATED_FILE
from qinqing.auth.verification import simulated_face_token
from qinqing.identity import ric
from qinqing.persons.models import Person
from qinqing.persons.service import find_by_id_number, new_person
from qinqing.runtime import Runtime
from support.factories import id_number

__all__ = [
    "OPERATOR",
    "PASSWORD",
    "STAFF_PASSWORD",
    "add_client",
    "add_person",
    "add_staff",
    "by_id",
    "id_number",
    "login",
    "person_with_account",
    "register",
    "sms_lines",
]

OPERATOR = Actor("operator", "pytest", "admin")
PASSWORD = "Secret2026pw"
STAFF_PASSWORD = "Staff2026pw!"


def add_person(
    rt: Runtime,
    *,
    name: str = "张三",
    number: str | None = None,
    region: str = "150600",
    scheme: str = "employee",
    status: str = "active",
    phone: str | None = "13800138000",
    seq: int = 1,
    session: Session | None = None,
) -> tuple[Person, str]:
    """A person in the registry (no account); in ``session`` when given, else in a
    unit of work of its own."""
    number = number or id_number(seq=seq)
    ident = ric.parse(number, rt.clock.now().date())
    p = new_person(
        rt.vault,
        ident=ident,
        name=name,
        region_code=region,
        scheme=scheme,
        status=status,
        phone=phone,
        now=rt.clock.now(),
    )
    if session is not None:
        session.add(p)
        return p, number
    with rt.db.unit_of_work() as s:
        s.add(p)
    return p, number


def sms_lines(rt: Runtime) -> list[dict[str, str]]:
    """Every message the simulated SMS provider has sent, oldest first."""
    path = rt.settings.data_dir / SIMULATED_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


def register(
    client: TestClient, number: str, name: str, phone: str, password: str = PASSWORD
) -> None:
    """Register the way a person does: ask for a code, read it from the simulated
    SMS file, register with it; a person without a registry phone uses a face check."""
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    body = {"id_number": number, "name": name, "phone": phone, "password": password}
    before = len(sms_lines(rt))
    r = client.post("/api/v1/auth/register/sms-code", json={"id_number": number, "name": name})
    assert r.status_code == 202, r.text
    sent = sms_lines(rt)[before:]
    if sent:
        body["sms_code"] = sent[-1]["code"]
    else:
        with rt.db.read_only() as s:
            person = find_by_id_number(s, rt.vault, number)
            assert person is not None, "no such person in the registry"
        body["face_token"] = simulated_face_token(person.id)
    r = client.post("/api/v1/auth/register", json=body)
    assert r.status_code == 201, r.text


def login(client: TestClient, login_: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"login": login_, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def person_with_account(
    rt: Runtime,
    client: TestClient,
    *,
    name: str = "张三",
    phone: str = "13800138000",
    seq: int = 1,
    **kw: object,
) -> tuple[Person, str, dict[str, str]]:
    person, number = add_person(rt, name=name, phone=phone, seq=seq, **kw)  # type: ignore[arg-type]
    register(client, number, name, phone)
    return person, number, login(client, phone)


def add_staff(rt: Runtime, username: str, role: str, region: str = "150600") -> None:
    with rt.db.unit_of_work() as s:
        auth.add_staff(
            s,
            rt,
            username=username,
            role=role,
            region_code=region,
            password=STAFF_PASSWORD,
            actor=OPERATOR,
        )


def add_client(
    rt: Runtime, kind: str, region: str = "150600", bank_code: str | None = None
) -> tuple[str, str]:
    with rt.db.unit_of_work() as s:
        c, secret = auth.add_client(
            s,
            rt,
            name=f"test {kind}",
            kind=kind,
            region_code=region,
            bank_code=bank_code or ("TESTBANK" if kind == "bank" else None),
            actor=OPERATOR,
        )
    return c.id, secret


def by_id(session: Session, model: Any, row_id: uuid.UUID) -> Any:
    """A row by its id alone (the tables are keyed by their owner first)."""
    return session.execute(select(model).where(model.id == row_id)).scalar_one_or_none()
