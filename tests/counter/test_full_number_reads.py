"""Who reads a full ID number, and what a read writes: a clerk of the region, each
read audited; reviewers see them masked; the web's GET person page writes nothing
(a cross-site link can make a clerk's browser send a GET)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD
from support.counter import audit_entries, clerk, counter_family, lookup, staff
from support.pages import web_login

API = "/api/v1"


def test_a_clerk_reads_a_link_in_full_and_the_read_is_audited(
    rt: Runtime, client: TestClient
) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    r = client.get(f"{API}/family/links/{fam.link_id}", headers=desk)
    assert r.status_code == 200
    assert r.json()["holder"]["id_number"] == fam.holder_number
    [entry] = audit_entries(rt, "family.link_read_full")
    assert entry.subject_id == str(fam.link_id) and entry.channel == "counter"
    assert fam.holder_number not in str(entry.details)


def test_a_reviewer_or_admin_of_the_region_sees_masked_numbers(
    rt: Runtime, client: TestClient
) -> None:
    fam = counter_family(rt)
    for role in ("reviewer", "admin"):
        headers = staff(rt, client, f"eeds-{role}", role, "150600")
        body = client.get(f"{API}/family/links/{fam.link_id}", headers=headers).json()
        assert body["holder"]["id_number"] != fam.holder_number
        assert "*" in body["holder"]["id_number"] and "*" in body["member"]["id_number"]
    assert audit_entries(rt, "family.link_read_full") == []


def _web_login(client: TestClient, username: str) -> None:
    web_login(client, username, STAFF_PASSWORD)


def test_the_person_page_a_get_shows_is_masked_and_writes_no_audit(
    rt: Runtime, client: TestClient
) -> None:
    fam = counter_family(rt)
    clerk(rt, client, "eeds-clerk")
    _web_login(client, "eeds-clerk")
    page = client.get(f"/counter/persons/{fam.holder.id}")
    assert page.status_code == 200 and "王建国" in page.text
    assert fam.holder_number not in page.text and fam.holder_phone not in page.text
    assert audit_entries(rt, "counter.lookup") == []
    # The full numbers again: a new look-up, a POST, audited with its purpose.
    assert lookup(client, clerk(rt, client, "eeds-clerk-2"), fam.holder_number).status_code == 200
    assert len(audit_entries(rt, "counter.lookup")) == 1
