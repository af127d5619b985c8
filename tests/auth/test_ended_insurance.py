"""A person whose insurance ended — ``terminated``, or ``deceased`` by a registry
import — can still log in and read their notices and statement (SPEC §3, "Mutual
aid across regions"), on both databases: an heir or the person reads what happened."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qinqing.audit.actor import Actor
from qinqing.persons.importer import import_csv
from qinqing.runtime import Runtime
from support.factories import person_row, write_persons_csv
from support.family import API, PERSON_PASSWORD, make_active_link
from support.ledger import fund

OPERATOR = Actor("operator", "pytest", "admin")


@pytest.mark.parametrize("status", ["terminated", "deceased"])
def test_login_notices_and_statement_still_work(
    rt: Runtime, client: TestClient, tmp_path: Path, status: str
) -> None:
    made = make_active_link(rt, client)
    holder = made.holder
    fund(rt, holder.id, 12_345)
    row = person_row(holder.id_number, holder.name, "150600", "employee", status, holder.phone)
    report = import_csv(rt, write_persons_csv(tmp_path / "r.csv", [row]), actor=OPERATOR)
    assert [dict(c.fields) for c in report.changed] == [{"status": ("active", status)}]

    r = client.post("/api/v1/auth/login", json={"login": holder.phone, "password": PERSON_PASSWORD})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    me = client.get(f"{API}/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["status"] == status
    assert me.json()["balance_fen"] == 12_345

    notes = client.get(f"{API}/me/notifications", headers=headers)
    assert notes.status_code == 200, notes.text
    kinds = [n["kind"] for n in notes.json()["items"]]
    assert "link.bound" in kinds or "link.consented" in kinds  # what they were told before
    # A death ends the person's links, and the notice of it is theirs to read.
    assert ("link.ended_by_registry" in kinds) == (status == "deceased")

    entries = client.get(f"{API}/me/account/entries", headers=headers)
    assert entries.status_code == 200, entries.text
    assert [e["amount_fen"] for e in entries.json()["entries"]] == [12_345]
