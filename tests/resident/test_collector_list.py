"""GET /resident-contributions?year=Y: the collector of the member's region lists what
was paid, for whom (full ID number) and when; the read is audited."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.audit.models import AuditEntry
from qinqing.runtime import Runtime
from support.ledger import institution_headers
from support.resident import API, collector_headers, pay, resident_family


def test_the_collector_of_the_members_region_sees_each_payment(
    rt: Runtime, client: TestClient
) -> None:
    made = resident_family(rt, client)
    paid = pay(client, made).json()
    headers = collector_headers(rt, client, "150600")
    r = client.get(f"{API}/resident-contributions", params={"year": 2027}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["page"], body["page_size"]) == (1, 1, 20)
    assert body["items"] == [
        {
            "id": paid["id"],
            "year": 2027,
            "amount_fen": 40000,
            "member_name": made.member.name,
            "member_id_number": made.member.id_number,
            "paid_at": paid["created_at"],
            "cover_starts_on": "2027-01-01",
            "member_left_scheme_at": None,
        }
    ]
    # Another cover year: nothing.
    r = client.get(f"{API}/resident-contributions", params={"year": 2026}, headers=headers)
    assert r.json()["items"] == [] and r.json()["total"] == 0
    # The full-ID read is audited (how many numbers, never the numbers).
    with rt.db.unit_of_work() as s:
        entries = (
            s.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "resident.listed")
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
    assert [e.details["id_numbers_shown"] for e in entries] == [1, 0]
    assert made.member.id_number not in str([e.details for e in entries])


def test_other_regions_and_other_clients_see_nothing(rt: Runtime, client: TestClient) -> None:
    made = resident_family(rt, client)
    assert pay(client, made).status_code == 201
    elsewhere = collector_headers(rt, client, "440100")
    r = client.get(f"{API}/resident-contributions", params={"year": 2027}, headers=elsewhere)
    assert r.status_code == 200 and r.json()["total"] == 0
    hospital = institution_headers(rt, client)
    r = client.get(f"{API}/resident-contributions", params={"year": 2027}, headers=hospital)
    assert (r.status_code, r.json()["code"]) == (403, "INSUFFICIENT_SCOPE")
    r = client.get(
        f"{API}/resident-contributions", params={"year": 2027}, headers=made.holder_headers
    )
    assert r.status_code == 403
    r = client.get(f"{API}/resident-contributions", params={"year": 2027})
    assert r.status_code == 401


def test_pages(rt: Runtime, client: TestClient) -> None:
    first = resident_family(rt, client)
    second = resident_family(rt, client, relation="mother")
    a = pay(client, first).json()
    b = pay(client, second).json()
    headers = collector_headers(rt, client)
    seen = []
    for page in (1, 2, 3):
        r = client.get(
            f"{API}/resident-contributions",
            params={"year": 2027, "page": page, "page_size": 1},
            headers=headers,
        )
        assert r.status_code == 200 and r.json()["total"] == 2
        seen += [i["id"] for i in r.json()["items"]]
    assert sorted(seen) == sorted([a["id"], b["id"]])
    r = client.get(f"{API}/resident-contributions", params={"year": "x"}, headers=headers)
    assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_ERROR")
    r = client.get(f"{API}/resident-contributions", headers=headers)
    assert r.status_code == 422
