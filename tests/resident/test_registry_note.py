"""A member who left the resident scheme, on the collector's list (both databases): a
re-import that moves the member to another scheme, or ends their insurance, notes
the contributions paid for a cover year not yet over (``member_left_scheme_at``),
so the collector of the member's region knows; the payment itself stays."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qinqing.audit.actor import Actor
from qinqing.kit.clock import FrozenClock
from qinqing.persons.importer import ImportReport, import_csv
from qinqing.runtime import Runtime
from support.factories import person_row, write_persons_csv
from support.family import Party
from support.resident import API, collector_headers, pay, resident_family

OPERATOR = Actor("operator", "pytest", "admin")


def reimport(rt: Runtime, tmp_path: Path, member: Party, **fields: str) -> ImportReport:
    values = {"scheme": "resident", "status": "active", **fields}
    row = person_row(
        member.id_number, member.name, "150600", values["scheme"], values["status"], member.phone
    )
    return import_csv(rt, write_persons_csv(tmp_path / "registry.csv", [row]), actor=OPERATOR)


def listed(rt: Runtime, client: TestClient, year: int = 2027) -> list[dict[str, Any]]:
    r = client.get(
        f"{API}/resident-contributions",
        params={"year": year},
        headers=collector_headers(rt, client),
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.mark.parametrize(
    ("fields", "change"),
    [
        ({"scheme": "employee"}, {"scheme": ["resident", "employee"]}),
        ({"status": "terminated"}, {"status": ["active", "terminated"]}),
        ({"status": "deceased"}, {"status": ["active", "deceased"]}),
    ],
)
def test_the_collector_sees_that_the_member_left_the_scheme(
    rt: Runtime,
    client: TestClient,
    tmp_path: Path,
    fields: dict[str, str],
    change: dict[str, list[str]],
) -> None:
    made = resident_family(rt, client)
    paid = pay(client, made).json()
    assert [i["member_left_scheme_at"] for i in listed(rt, client)] == [None]

    report = reimport(rt, tmp_path, made.member, **fields)

    assert [{k: list(v) for k, v in c.fields.items()} for c in report.changed] == [change]
    (item,) = listed(rt, client)
    assert item["id"] == paid["id"] and item["amount_fen"] == paid["amount_fen"]
    assert datetime.fromisoformat(item["member_left_scheme_at"]) == rt.clock.now()


def test_staying_in_the_scheme_or_a_cover_year_already_over_is_not_noted(
    rt: Runtime, client: TestClient, tmp_path: Path
) -> None:
    made = resident_family(rt, client)
    assert pay(client, made).status_code == 201
    # Arrears: still in the resident scheme.
    reimport(rt, tmp_path, made.member, status="arrears")
    assert [i["member_left_scheme_at"] for i in listed(rt, client)] == [None]
    # In 2028 (China time) the 2027 cover is over: leaving then changes nothing of it.
    assert isinstance(rt.clock, FrozenClock)
    rt.clock.set(datetime(2027, 12, 31, 16, 30, tzinfo=UTC))  # 2028-01-01 00:30 CST
    report = reimport(rt, tmp_path, made.member, scheme="flexible", status="arrears")
    assert [sorted(c.fields) for c in report.changed] == [["scheme"]]
    assert [i["member_left_scheme_at"] for i in listed(rt, client)] == [None]
