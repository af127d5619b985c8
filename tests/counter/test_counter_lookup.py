"""POST /counter/lookup on SQLite and PostgreSQL: what a clerk sees, what is masked,
and that every look-up, found or not, is in the audit log."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qinqing.audit import service as audit
from qinqing.identity.masking import mask_id_number
from qinqing.runtime import Runtime
from support.accounts import id_number
from support.counter import audit_entries, clerk, counter_family, lookup
from support.unbind import make_link


def test_a_clerk_of_the_region_sees_the_person_and_links_in_full(
    rt: Runtime, client: TestClient
) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")

    r = lookup(client, desk, fam.holder_number, reason="本人到窗口办理解除")
    assert r.status_code == 200, r.text
    body = r.json()
    person = body["person"]
    assert person["name"] == "王建国"
    assert person["id_number"] == fam.holder_number
    assert person["phone"] == fam.holder_phone
    assert (person["status"], person["scheme"]) == ("active", "employee")
    assert (person["region_code"], person["region_name"]) == ("150600", "鄂尔多斯市")
    assert body["as_member"] == []
    [link] = body["as_holder"]
    assert link["id"] == str(fam.link_id)
    assert (link["status"], link["relation"], link["mutual_aid"]) == ("active", "spouse", True)
    assert link["member"]["id_number"] == fam.member_number
    assert body["id_document_locked_until"] is None

    # The member sees the same link from the other side.
    r = lookup(client, desk, fam.member_number)
    assert [x["id"] for x in r.json()["as_member"]] == [str(fam.link_id)]
    assert r.json()["as_holder"] == []


def test_every_look_up_is_audited_with_the_clerk_and_the_reason(
    rt: Runtime, client: TestClient
) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    assert lookup(client, desk, fam.holder_number, reason="电话回访核对").status_code == 200
    assert lookup(client, desk, fam.member_number).status_code == 200
    unknown = id_number(seq=77)
    assert lookup(client, desk, unknown).status_code == 404

    found, other, missing = audit_entries(rt, "counter.lookup")
    assert (found.actor_kind, found.channel) == ("staff", "counter")
    assert found.subject_id == str(fam.holder.id)
    assert found.reason == "电话回访核对"
    assert found.details["found"] is True and found.details["revealed"] is True
    assert other.subject_id == str(fam.member.id) and other.reason is None
    # A number nobody has is recorded too, by its keyed blind index only.
    assert missing.details["found"] is False
    assert missing.details["id_number_index"] == rt.vault.index("id_number", unknown)
    with rt.db.unit_of_work() as s:
        assert audit.verify(s).ok
    for entry in (found, other, missing):
        text = str(entry.details) + str(entry.reason)
        assert fam.holder_number not in text and unknown not in text


def test_unknown_and_foreign_persons_get_the_same_404(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    far = clerk(rt, client, "gz-clerk", "440100")
    foreign = lookup(client, far, fam.holder_number)
    unknown = lookup(client, far, id_number(seq=88))
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json()
    assert foreign.headers["content-type"] == "application/problem+json"
    assert fam.holder_number not in foreign.text
    # Both asks are in the audit log as not found.
    assert [e.details["found"] for e in audit_entries(rt, "counter.lookup")] == [False, False]


def test_a_malformed_number_is_a_clear_422_and_nothing_is_looked_up(
    rt: Runtime, client: TestClient
) -> None:
    desk = clerk(rt, client, "eeds-clerk")
    good = id_number(seq=5)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    r = lookup(client, desk, bad)
    assert r.status_code == 422
    assert r.json()["code"] == "ID_NUMBER_CHECK_DIGIT"
    assert bad not in r.text
    assert audit_entries(rt, "counter.lookup") == []


def test_a_party_from_another_region_is_shown_masked_with_this_regions_links_only(
    rt: Runtime, client: TestClient
) -> None:
    # 李秀英 is insured in 广州 but is the member of a link held in 鄂尔多斯, and
    # also the holder of a link in 广州 that 鄂尔多斯 has nothing to do with.
    fam = counter_family(rt, member_region="440100")
    other = counter_family(rt, region="440100", seq=2)
    make_link(rt, fam.member, other.member, relation="mother", mutual_aid=False)
    desk = clerk(rt, client, "eeds-clerk")

    r = lookup(client, desk, fam.member_number)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["person"]["id_number"] == mask_id_number(fam.member_number)
    assert body["person"]["region_code"] == "440100"
    assert [x["id"] for x in body["as_member"]] == [str(fam.link_id)]
    assert body["as_holder"] == []

    # The 广州 clerk sees her in full with both links; the 鄂尔多斯 link's holder masked.
    gz = clerk(rt, client, "gz-clerk", "440100")
    body = lookup(client, gz, fam.member_number).json()
    assert body["person"]["id_number"] == fam.member_number
    assert len(body["as_holder"]) == 1 and len(body["as_member"]) == 1
    assert body["as_member"][0]["holder"]["id_number"] == mask_id_number(fam.holder_number)
