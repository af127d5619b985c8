"""Binding, consent, decline and 我的家庭成员 over the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.audit.models import AuditEntry
from qinqing.audit.service import verify as verify_chain
from qinqing.auth.verification import simulated_face_token
from qinqing.family import service
from qinqing.family.models import FamilyLink
from qinqing.kit.clock import FrozenClock
from qinqing.notify.models import Notification
from qinqing.regions.policy import CrossRegion
from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_client, add_staff, login
from support.family import (
    API,
    PAYMENT_PASSWORD,
    Party,
    bind,
    consent,
    make_active_link,
    new_person,
    relogin,
    set_status,
)
from support.guardians import register_guardians


def override_policy(rt: Runtime, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """Every region's policy with ``changes`` (the rules read it at each call)."""
    original = rt.policies.policy

    def patched(code: str) -> Any:
        return original(code).model_copy(update=changes)

    monkeypatch.setattr(rt.policies, "policy", patched)


def count(rt: Runtime, model: Any) -> int:
    with rt.db.unit_of_work() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def notices(rt: Runtime, party: Party) -> list[str]:
    with rt.db.unit_of_work() as s:
        rows = s.execute(
            select(Notification.kind)
            .where(Notification.person_id == party.id)
            .order_by(Notification.created_at, Notification.kind)
        )
        return list(rows.scalars())


def family(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    r = client.get(f"{API}/me/family", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# --- story: bind, consent, list ---------------------------------------------------


def test_bind_consent_and_list(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    holder = new_person(rt, name="张伟", client=client)
    wife = new_person(rt, name="李娜", born=date(1987, 7, 21), sex="F", client=client)

    r = bind(
        client,
        holder.headers,
        wife.id_number,
        "李娜",
        "spouse",
        mutual_aid=True,
        yearly_limit_fen=500_000,
    )
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["status"] == "pending_consent"
    assert link["consent_required"] is True
    assert link["your_role"] == "holder"
    assert link["mutual_aid"] is True and link["mutual_aid_yearly_limit_fen"] == 500_000
    assert link["member"]["name"] == "李娜"
    assert link["member"]["id_number"] != wife.id_number  # masked for persons
    assert "*" in link["member"]["id_number"]
    assert link["created_channel"] == "app" and link["activated_at"] is None
    assert notices(rt, wife) == ["link.requested"]
    assert notices(rt, holder) == []

    # The member sees the pending link and accepts it with her payment password.
    mine = family(client, wife.headers)
    assert mine["as_holder"] == []
    assert [x["id"] for x in mine["as_member"]] == [link["id"]]
    assert mine["as_member"][0]["your_role"] == "member"

    clock.advance(timedelta(minutes=10))
    r = consent(client, wife.headers, link["id"])
    assert r.status_code == 200, r.text
    active = r.json()
    assert active["status"] == "active"
    assert active["activated_at"] is not None
    assert notices(rt, holder) == ["link.consented"]

    listed = family(client, holder.headers)
    assert [x["id"] for x in listed["as_holder"]] == [link["id"]]
    assert listed["as_holder"][0]["status"] == "active"
    assert listed["as_member"] == []

    r = client.get(f"{API}/family/links/{link['id']}", headers=holder.headers)
    assert r.status_code == 200 and r.json()["status"] == "active"

    with rt.db.unit_of_work() as s:
        actions = list(s.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())
        assert actions[-2:] == ["family.bind", "family.consent"]
        assert verify_chain(s).ok


def test_consent_with_the_simulated_face(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    mother = new_person(rt, born=date(1960, 1, 1), sex="F", client=client, payment_password=None)
    link = bind(client, holder.headers, mother.id_number, mother.name, "mother").json()
    r = client.post(
        f"{API}/family/links/{link['id']}/consent",
        headers=mother.headers,
        json={"verification": {"method": "face", "face_token": "sim-ok:nobody"}},
    )
    assert r.status_code == 403 and r.json()["code"] == "VERIFICATION_FAILED"
    r = client.post(
        f"{API}/family/links/{link['id']}/consent",
        headers=mother.headers,
        json={"verification": {"method": "face", "face_token": simulated_face_token(mother.id)}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"


def test_a_young_child_is_bound_directly_by_a_registered_guardian(
    rt: Runtime, client: TestClient
) -> None:
    parent = new_person(rt, client=client)
    child = new_person(rt, name="张子涵", born=date(2015, 6, 1), sex="F", account=False)
    register_guardians(rt, child.id_number, parent.id_number)
    r = bind(client, parent.headers, child.id_number, "张子涵", "child", mutual_aid=True)
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["status"] == "active" and link["consent_required"] is False
    assert link["activated_at"] is not None
    assert notices(rt, parent) == ["link.bound"]
    assert notices(rt, child) == ["link.bound"]


def test_anyone_else_binding_a_young_child_must_prove_guardianship(
    rt: Runtime, client: TestClient
) -> None:
    """The outside review's finding, replayed: an adult of another city binds a child
    under 16 as "child". The link waits for proof and allows nothing."""
    parent = new_person(rt, client=client)
    stranger = new_person(rt, region="440100", client=client)
    child = new_person(rt, name="张子涵", born=date(2015, 6, 1), sex="F", account=False)
    register_guardians(rt, child.id_number, parent.id_number)
    r = bind(client, stranger.headers, child.id_number, "张子涵", "child")
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["status"] == "pending_proof" and link["activated_at"] is None
    # What the stranger typed, nothing the registry holds.
    assert link["member"]["status"] is None and link["member"]["region_code"] is None
    assert link["member"]["id"] is None and link["member"]["scheme"] is None
    assert notices(rt, stranger) == ["link.proof_required"]
    # The registered guardian is told, with the binder's name masked.
    assert notices(rt, parent) == ["link.guardian_notice"]


def test_a_sixteen_year_old_child_consents(rt: Runtime, client: TestClient) -> None:
    parent = new_person(rt, client=client)
    # 16 on the test clock's date (2026-11-23).
    teen = new_person(rt, born=date(2010, 11, 23), sex="M", client=client)
    link = bind(client, parent.headers, teen.id_number, teen.name, "child").json()
    assert link["status"] == "pending_consent"
    assert consent(client, teen.headers, link["id"]).json()["status"] == "active"


def test_make_active_link_helper(rt: Runtime, client: TestClient) -> None:
    first = make_active_link(rt, client)
    second = make_active_link(rt, client, relation="father", holder=first.holder)
    assert first.link["status"] == second.link["status"] == "active"
    assert first.holder_id == second.holder_id
    listed = family(client, first.holder_headers)
    assert {x["id"] for x in listed["as_holder"]} == {first.link_id, second.link_id}


# --- refusals ----------------------------------------------------------------------


def _refusal(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["code"] == code
    assert code in body.get("refusals", [code])


def test_member_not_found_is_one_answer(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    wife = new_person(rt, name="李娜", born=date(1987, 1, 1), sex="F", account=False)
    from support.accounts import id_number

    unknown = id_number("150602", date(1990, 1, 1), 77, "F")
    wrong_name = bind(client, holder.headers, wife.id_number, "李四")
    nobody = bind(client, holder.headers, unknown, "李娜")
    for r in (wrong_name, nobody):
        _refusal(r, 422, "MEMBER_NOT_FOUND")
        assert wife.id_number not in r.text and unknown not in r.text
    assert {k: v for k, v in wrong_name.json().items()} == {k: v for k, v in nobody.json().items()}
    bad = wife.id_number[:-1] + ("0" if wife.id_number[-1] != "0" else "1")
    _refusal(bind(client, holder.headers, bad, "李娜"), 422, "ID_NUMBER_CHECK_DIGIT")
    assert count(rt, FamilyLink) == 0


RefusalSetup = Callable[[Runtime, TestClient, Party, pytest.MonkeyPatch], Callable[[], Any]]


def _member(rt: Runtime, **kw: Any) -> Party:
    kw.setdefault("born", date(1986, 1, 1))
    kw.setdefault("sex", "F")
    return new_person(rt, account=False, **kw)


def _self(rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch) -> Callable[[], Any]:
    return lambda: bind(c, h.headers, h.id_number, h.name, "spouse")


def _sibling(rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch) -> Callable[[], Any]:
    # The national default admits all seven close relatives; a region may narrow them.
    override_policy(rt, mp, relations=("spouse", "father", "mother", "child"))
    m = _member(rt)
    return lambda: bind(c, h.headers, m.id_number, m.name, "sibling")


def _aid_relation(
    rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch
) -> Callable[[], Any]:
    override_policy(rt, mp, mutual_aid_relations=("spouse", "father", "mother"))
    m = _member(rt, born=date(2000, 1, 1))
    return lambda: bind(c, h.headers, m.id_number, m.name, "child", mutual_aid=True)


def _limit(rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch) -> Callable[[], Any]:
    m = _member(rt)
    return lambda: bind(c, h.headers, m.id_number, m.name, "spouse", yearly_limit_fen=100)


def _limit_cap(rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch) -> Callable[[], Any]:
    override_policy(rt, mp, mutual_aid_yearly_limit_max_fen=1_000_00)
    m = _member(rt)
    return lambda: bind(
        c, h.headers, m.id_number, m.name, mutual_aid=True, yearly_limit_fen=1_000_01
    )


def _holder_arrears(
    rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch
) -> Callable[[], Any]:
    set_status(rt, h.id, "arrears")
    m = _member(rt)
    return lambda: bind(c, h.headers, m.id_number, m.name)


def _implausible(rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch) -> Callable[[], Any]:
    m = _member(rt, born=date(1950, 1, 1), sex="F")
    return lambda: bind(c, h.headers, m.id_number, m.name, "father")


def _minor(rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch) -> Callable[[], Any]:
    m = _member(rt, born=date(2012, 1, 1))
    return lambda: bind(c, h.headers, m.id_number, m.name, "spouse")


def _duplicate(rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch) -> Callable[[], Any]:
    m = _member(rt, born=date(2000, 1, 1))
    assert bind(c, h.headers, m.id_number, m.name, "child").status_code == 201
    return lambda: bind(c, h.headers, m.id_number, m.name, "child")


def _reverse(rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch) -> Callable[[], Any]:
    m = new_person(rt, born=date(1986, 1, 1), sex="F", client=c)
    assert bind(c, m.headers, h.id_number, h.name, "spouse").status_code == 201
    return lambda: bind(c, h.headers, m.id_number, m.name, "spouse")


def _second_spouse(
    rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch
) -> Callable[[], Any]:
    a, b = _member(rt), _member(rt)
    assert bind(c, h.headers, a.id_number, a.name).status_code == 201
    return lambda: bind(c, h.headers, b.id_number, b.name)


def _limit_reached(
    rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch
) -> Callable[[], Any]:
    override_policy(rt, mp, max_members=1)
    a, b = _member(rt, born=date(2000, 1, 1)), _member(rt)
    assert bind(c, h.headers, a.id_number, a.name, "child").status_code == 201
    return lambda: bind(c, h.headers, b.id_number, b.name)


def _resident_holder(
    rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch
) -> Callable[[], Any]:
    holder = new_person(rt, scheme="resident", client=c)
    m = _member(rt)
    return lambda: bind(c, holder.headers, m.id_number, m.name, mutual_aid=True)


def _terminated_member(
    rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch
) -> Callable[[], Any]:
    m = _member(rt, status="terminated")
    return lambda: bind(c, h.headers, m.id_number, m.name, mutual_aid=True)


def _out_of_scope(
    rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch
) -> Callable[[], Any]:
    # A region that has not started cross-region mutual aid through a quota.
    override_policy(rt, mp, cross_region=CrossRegion.none)
    m = _member(rt, region="440100")
    return lambda: bind(c, h.headers, m.id_number, m.name, mutual_aid=True)


def _one_direction(
    rt: Runtime, c: TestClient, h: Party, mp: pytest.MonkeyPatch
) -> Callable[[], Any]:
    override_policy(rt, mp, one_direction=True)
    # The member already gives mutual aid to her own child.
    m = new_person(rt, born=date(1986, 1, 1), sex="F", client=c)
    kid = _member(rt, born=date(2015, 1, 1))
    assert bind(c, m.headers, kid.id_number, kid.name, "child", mutual_aid=True).status_code == 201
    return lambda: bind(c, h.headers, m.id_number, m.name, "spouse", mutual_aid=True)


REFUSALS: list[tuple[RefusalSetup, int, str]] = [
    (_self, 422, "SELF_LINK"),
    (_sibling, 422, "RELATION_NOT_ADMITTED"),
    (_aid_relation, 422, "MUTUAL_AID_RELATION_NOT_ADMITTED"),
    (_limit, 422, "YEARLY_LIMIT_INVALID"),
    (_limit_cap, 422, "YEARLY_LIMIT_INVALID"),
    (_holder_arrears, 409, "HOLDER_NOT_ACTIVE"),
    (_implausible, 409, "RELATION_IMPLAUSIBLE"),
    (_minor, 409, "MINOR_NEEDS_PARENT"),
    (_duplicate, 409, "DUPLICATE_LINK"),
    (_reverse, 409, "DUPLICATE_LINK"),
    (_second_spouse, 409, "RELATION_ALREADY_BOUND"),
    (_limit_reached, 409, "MEMBER_LIMIT_REACHED"),
    (_resident_holder, 409, "MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER"),
    (_terminated_member, 409, "MEMBER_NOT_INSURED"),
    (_out_of_scope, 409, "MUTUAL_AID_OUT_OF_SCOPE"),
    (_one_direction, 409, "ONE_DIRECTION"),
]


@pytest.mark.parametrize(
    ("setup", "status", "code"), REFUSALS, ids=[f.__name__ for f, _, _ in REFUSALS]
)
def test_each_refusal_over_the_api(
    rt: Runtime,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    setup: RefusalSetup,
    status: int,
    code: str,
) -> None:
    holder = new_person(rt, client=client)
    refused = setup(rt, client, holder, monkeypatch)
    links_before = count(rt, FamilyLink)
    notes_before = count(rt, Notification)
    audit_before = count(rt, AuditEntry)
    _refusal(refused(), status, code)
    # A refused bind writes nothing: no link, no notice, no audit entry.
    assert count(rt, FamilyLink) == links_before
    assert count(rt, Notification) == notes_before
    assert count(rt, AuditEntry) == audit_before


def test_refusal_messages_follow_accept_language(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    zh = client.post(
        f"{API}/me/family",
        headers=holder.headers,
        json={
            "member_id_number": holder.id_number,
            "member_name": holder.name,
            "relation": "spouse",
        },
    )
    en = client.post(
        f"{API}/me/family",
        headers={**holder.headers, "Accept-Language": "en"},
        json={
            "member_id_number": holder.id_number,
            "member_name": holder.name,
            "relation": "spouse",
        },
    )
    assert zh.json()["title"] == "不能绑定本人。"
    assert en.json()["title"] == "You cannot bind yourself."
    assert en.json()["detail"]


def test_request_validation(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    base = {"member_id_number": holder.id_number, "member_name": "x", "relation": "spouse"}
    for body in (
        {**base, "relation": "cousin"},
        {**base, "extra": 1},
        {**base, "mutual_aid": "yes"},
        {**base, "mutual_aid_yearly_limit_fen": 10**15},
        {**base, "mutual_aid_yearly_limit_fen": "100"},
        {**base, "member_name": ""},
        {"member_name": "x", "relation": "spouse"},
    ):
        r = client.post(f"{API}/me/family", headers=holder.headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == "VALIDATION_ERROR"
        assert holder.id_number not in r.text


def test_only_persons_bind(rt: Runtime, client: TestClient) -> None:
    add_staff(rt, "clerk1", "clerk")
    staff = login(client, "clerk1", STAFF_PASSWORD)
    r = client.post(
        f"{API}/me/family",
        headers=staff,
        json={"member_id_number": "x", "member_name": "x", "relation": "spouse"},
    )
    assert r.status_code == 403
    assert client.get(f"{API}/me/family").status_code == 401


# --- consent ------------------------------------------------------------------------


def _pending(rt: Runtime, client: TestClient) -> tuple[Party, Party, str]:
    holder = new_person(rt, client=client)
    wife = new_person(rt, born=date(1987, 1, 1), sex="F", client=client)
    r = bind(client, holder.headers, wife.id_number, wife.name, "spouse", mutual_aid=True)
    assert r.status_code == 201
    return holder, wife, r.json()["id"]


def test_consent_by_others(rt: Runtime, client: TestClient) -> None:
    holder, wife, link_id = _pending(rt, client)
    stranger = new_person(rt, client=client)
    r = consent(client, stranger.headers, link_id)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    r = consent(client, holder.headers, link_id)
    assert r.status_code == 403 and r.json()["code"] == "NOT_THE_MEMBER"
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        r = consent(client, wife.headers, bad)
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    add_staff(rt, "clerk1", "clerk")
    r = consent(client, login(client, "clerk1", STAFF_PASSWORD), link_id)
    assert r.status_code == 403
    # Nothing changed.
    assert consent(client, wife.headers, link_id).json()["status"] == "active"
    r = consent(client, wife.headers, link_id)
    assert r.status_code == 409 and r.json()["code"] == "LINK_NOT_PENDING"


def test_consent_needs_verification(rt: Runtime, client: TestClient) -> None:
    _, wife, link_id = _pending(rt, client)
    r = client.post(f"{API}/family/links/{link_id}/consent", headers=wife.headers, json={})
    assert r.status_code == 409 and r.json()["code"] == "VERIFICATION_REQUIRED"
    r = client.post(
        f"{API}/family/links/{link_id}/consent",
        headers=wife.headers,
        json={"verification": {"method": "password", "password": "x"}},
    )
    assert r.status_code == 422


def test_wrong_payment_passwords_count_and_lock(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _, wife, link_id = _pending(rt, client)
    for remaining in (4, 3, 2, 1):
        r = consent(client, wife.headers, link_id, "000001")
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "VERIFICATION_FAILED"
        assert r.json()["remaining_attempts"] == remaining
    r = consent(client, wife.headers, link_id, "000001")
    assert r.status_code == 423 and r.json()["code"] == "VERIFICATION_LOCKED"
    r = consent(client, wife.headers, link_id, PAYMENT_PASSWORD)
    assert r.status_code == 423
    r = client.get(f"{API}/family/links/{link_id}", headers=wife.headers)
    assert r.json()["status"] == "pending_consent"
    clock.advance(timedelta(hours=3, seconds=1))
    assert consent(client, relogin(client, wife), link_id).json()["status"] == "active"


def test_consent_decides_the_rules_again(
    rt: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder, wife, link_id = _pending(rt, client)
    set_status(rt, holder.id, "arrears")
    r = consent(client, wife.headers, link_id)
    assert r.status_code == 409 and r.json()["code"] == "HOLDER_NOT_ACTIVE"
    set_status(rt, holder.id, "active")
    override_policy(rt, monkeypatch, mutual_aid_scope="region", max_members=0)
    r = consent(client, wife.headers, link_id)
    assert r.status_code == 409 and r.json()["code"] == "MEMBER_LIMIT_REACHED"
    monkeypatch.undo()
    assert consent(client, wife.headers, link_id).json()["status"] == "active"


# --- decline -------------------------------------------------------------------------


def test_member_declines_and_holder_withdraws(rt: Runtime, client: TestClient) -> None:
    holder, wife, link_id = _pending(rt, client)
    r = client.post(f"{API}/family/links/{link_id}/decline", headers=wife.headers)
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["status"] == "ended" and ended["end_reason"] == "declined by the member"
    assert ended["ended_by_kind"] == "person" and ended["ended_channel"] == "app"
    assert notices(rt, holder) == ["link.declined"]
    r = consent(client, wife.headers, link_id)
    assert r.status_code == 409 and r.json()["code"] == "LINK_NOT_PENDING"

    # The pair is free again; this time the holder withdraws.
    r = bind(client, holder.headers, wife.id_number, wife.name, "spouse")
    assert r.status_code == 201
    second = r.json()["id"]
    r = client.post(f"{API}/family/links/{second}/decline", headers=holder.headers)
    assert r.json()["end_reason"] == "withdrawn by the holder"
    assert notices(rt, wife)[-1] == "link.withdrawn"
    stranger = new_person(rt, client=client)
    assert (
        client.post(f"{API}/family/links/{second}/decline", headers=stranger.headers).status_code
        == 404
    )


def test_an_active_link_is_not_declined(rt: Runtime, client: TestClient) -> None:
    made = make_active_link(rt, client)
    r = client.post(f"{API}/family/links/{made.link_id}/decline", headers=made.member_headers)
    assert r.status_code == 409 and r.json()["code"] == "LINK_NOT_PENDING"


# --- listing and reading ---------------------------------------------------------------


def test_listing_order_and_ended_links(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    holder = new_person(rt, client=client)
    kids = [_member(rt, born=date(2000 + i, 1, 1)) for i in range(3)]
    ids = []
    for kid in kids:
        ids.append(bind(client, holder.headers, kid.id_number, kid.name, "child").json()["id"])
        clock.advance(timedelta(minutes=1))
    client.post(f"{API}/family/links/{ids[1]}/decline", headers=holder.headers)
    listed = family(client, holder.headers)["as_holder"]
    assert [x["id"] for x in listed] == [ids[2], ids[0], ids[1]]  # open newest first, then ended
    assert [x["status"] for x in listed] == ["pending_consent", "pending_consent", "ended"]
    clock.advance(timedelta(days=service.ENDED_VISIBLE_DAYS, minutes=1))
    assert [x["id"] for x in family(client, relogin(client, holder))["as_holder"]] == [
        ids[2],
        ids[0],
    ]


def test_who_may_read_a_link(rt: Runtime, client: TestClient) -> None:
    made = make_active_link(rt, client)
    url = f"{API}/family/links/{made.link_id}"
    assert client.get(url, headers=made.member_headers).json()["your_role"] == "member"
    stranger = new_person(rt, client=client)
    r = client.get(url, headers=stranger.headers)
    assert r.status_code == 404
    assert r.json() == client.get(f"{API}/family/links/{'0' * 32}", headers=stranger.headers).json()
    assert client.get(f"{API}/family/links/bogus", headers=stranger.headers).status_code == 404

    add_staff(rt, "clerk-here", "clerk", "150600")
    add_staff(rt, "clerk-there", "clerk", "440100")
    here = client.get(url, headers=login(client, "clerk-here", STAFF_PASSWORD))
    assert here.status_code == 200
    assert here.json()["member"]["id_number"] == made.member.id_number  # staff of the region
    assert here.json()["your_role"] is None
    there = client.get(url, headers=login(client, "clerk-there", STAFF_PASSWORD))
    assert there.status_code == 404

    cid, secret = add_client(rt, "bank")
    token = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    ).json()["access_token"]
    assert client.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_the_audit_chain_stays_intact(rt: Runtime, client: TestClient) -> None:
    made = make_active_link(rt, client, relation="mother")
    make_active_link(rt, client, relation="child", holder=made.holder, member_born=date(2016, 1, 1))
    with rt.db.unit_of_work() as s:
        result = verify_chain(s)
        assert result.ok, result.problem
        details = list(
            s.execute(
                select(AuditEntry.details).where(AuditEntry.action.like("family.%"))
            ).scalars()
        )
    assert details
    for d in details:  # no ID number or name in any audit detail
        text = str(d)
        assert made.holder.id_number not in text and made.member.id_number not in text
        assert made.member.name not in text


# --- Idempotency-Key -------------------------------------------------------------------


def test_bind_and_consent_are_idempotent(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    wife = new_person(rt, born=date(1987, 1, 1), sex="F", client=client)
    key = {"Idempotency-Key": "bind-1"}
    first = bind(client, holder.headers, wife.id_number, wife.name, headers=key)
    again = bind(client, holder.headers, wife.id_number, wife.name, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert count(rt, FamilyLink) == 1
    other = bind(
        client, holder.headers, wife.id_number, wife.name, "spouse", mutual_aid=True, headers=key
    )
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_MISMATCH"

    link_id = first.json()["id"]
    url = f"{API}/family/links/{link_id}/consent"
    ckey = {**wife.headers, "Idempotency-Key": "consent-1"}

    def pw(p: str) -> dict[str, Any]:
        return {"verification": {"method": "payment_password", "payment_password": p}}

    wrong = client.post(url, headers=ckey, json=pw("000001"))
    assert wrong.status_code == 403  # counted, and the key is given back
    ok = client.post(url, headers=ckey, json=pw(PAYMENT_PASSWORD))
    assert ok.status_code == 200 and ok.json()["status"] == "active"
    replay = client.post(url, headers=ckey, json=pw(PAYMENT_PASSWORD))
    assert replay.status_code == 200 and replay.json() == ok.json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert notices(rt, holder) == ["link.consented"]


def test_nul_bytes_never_reach_the_database(rt: Runtime, client: TestClient) -> None:
    holder = new_person(rt, client=client)
    wife = new_person(rt, born=date(1987, 1, 1), sex="F", account=False)
    r = bind(client, holder.headers, wife.id_number, "李\x00娜")
    # Refused at the door (qinqing.http.input_guard) before any route runs.
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR"
    r = bind(client, holder.headers, wife.id_number[:-1] + "\x00", wife.name)
    assert r.status_code == 422
