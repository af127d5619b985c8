"""POST /counter/bind on SQLite and PostgreSQL: a clerk binds for a holder who came
with the member; the app's binding rules decide, the consent is the counter's."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.family.models import FamilyLink
from qinqing.identity.masking import mask_id_number
from qinqing.runtime import Runtime
from support.accounts import add_person, id_number
from support.counter import audit_entries, bind_body, clerk, counter_bind
from support.guardians import register_guardians
from support.unbind import load_link, notifications


def holder_and_member(
    rt: Runtime,
    *,
    region: str = "150600",
    scheme: str = "employee",
    member_born: date = date(1958, 5, 5),
    member_sex: str = "F",
    seq: int = 1,
) -> tuple[str, str]:
    area = {"150600": "150602", "440100": "440106"}[region]
    _, holder = add_person(
        rt,
        name="王建国",
        number=id_number(area=area, born=date(1956, 3, 3), seq=seq, sex="M"),
        region=region,
        scheme=scheme,
        phone=None,
    )
    _, member = add_person(
        rt,
        name="李秀英",
        number=id_number(area=area, born=member_born, seq=seq, sex=member_sex),
        region=region,
        scheme="resident",
        phone=None,
    )
    return holder, member


def links(rt: Runtime) -> int:
    with rt.db.unit_of_work() as s:
        return int(s.execute(select(func.count()).select_from(FamilyLink)).scalar_one())


def test_an_adult_member_consents_at_the_counter(rt: Runtime, client: TestClient) -> None:
    holder, member = holder_and_member(rt)
    desk = clerk(rt, client, "eeds-clerk")
    body = bind_body(
        holder,
        "王建国",
        member,
        "李秀英",
        mutual_aid=True,
        yearly_limit_fen=500_000,
        member_type="medical_card",
    )
    r = counter_bind(client, desk, body)
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["status"] == "active"
    assert (link["relation"], link["mutual_aid"]) == ("spouse", True)
    assert link["mutual_aid_yearly_limit_fen"] == 500_000
    assert link["consent_required"] is True and link["activated_at"] is not None
    assert link["created_channel"] == "counter"
    assert link["holder"]["id_number"] == mask_id_number(holder)
    assert holder not in r.text and member not in r.text

    row = load_link(rt, uuid.UUID(link["id"]))
    assert (row.created_by_kind, row.created_channel) == ("staff", "counter")
    [entry] = audit_entries(rt, "family.bind")
    assert (entry.actor_kind, entry.channel) == ("staff", "counter")
    assert entry.details["consent_method"] == "id_document"
    assert entry.details["form_number"] == "QQ-BIND-0001"
    assert entry.details["holder_id_document_type"] == "resident_id"
    assert entry.details["member_id_document_type"] == "medical_card"
    assert entry.details["status"] == "active"
    # Both are told they are bound; nobody is asked to consent again in the app.
    assert sorted(kind for _, kind in notifications(rt, "link.")) == ["link.bound"] * 2


def test_the_apps_binding_rules_decide(rt: Runtime, client: TestClient) -> None:
    holder, member = holder_and_member(rt, scheme="resident")
    desk = clerk(rt, client, "eeds-clerk")
    r = counter_bind(client, desk, bind_body(holder, "王建国", member, "李秀英", mutual_aid=True))
    assert r.status_code == 409
    assert r.json()["code"] == "MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER"
    r = counter_bind(client, desk, bind_body(holder, "王建国", member, "李秀英", relation="father"))
    assert r.json()["code"] == "RELATION_IMPLAUSIBLE"
    assert (
        counter_bind(client, desk, bind_body(holder, "王建国", member, "李秀英")).status_code == 201
    )
    # No second open link between the same two persons.
    r = counter_bind(
        client, desk, bind_body(holder, "王建国", member, "李秀英", form_number="QQ-BIND-0002")
    )
    # The request's own refusals come first (the app decides them before any look-up).
    assert (r.status_code, r.json()["code"]) == (409, "RELATION_ALREADY_BOUND")
    assert r.json()["refusals"] == ["RELATION_ALREADY_BOUND", "DUPLICATE_LINK"]
    assert links(rt) == 1


def test_a_young_child_is_bound_directly_only_by_a_registered_guardian(
    rt: Runtime, client: TestClient
) -> None:
    holder, child = holder_and_member(rt, member_born=date(2016, 6, 1))
    desk = clerk(rt, client, "eeds-clerk")
    r = counter_bind(client, desk, bind_body(holder, "王建国", child, "李秀英", relation="spouse"))
    assert (r.status_code, r.json()["code"]) == (409, "MINOR_NEEDS_PARENT")
    # No guardian on record: the clerk's binding waits for the proof as the app's does.
    r = counter_bind(client, desk, bind_body(holder, "王建国", child, "李秀英", relation="child"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending_proof"


def test_a_registered_guardian_binds_a_young_child_at_the_counter(
    rt: Runtime, client: TestClient
) -> None:
    holder, child = holder_and_member(rt, member_born=date(2016, 6, 1))
    register_guardians(rt, child, holder)
    desk = clerk(rt, client, "eeds-clerk")
    r = counter_bind(client, desk, bind_body(holder, "王建国", child, "李秀英", relation="child"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active" and r.json()["consent_required"] is False
    [entry] = audit_entries(rt, "family.bind")
    assert "consent_method" not in entry.details


def test_holder_not_of_the_region_is_the_lookups_404(rt: Runtime, client: TestClient) -> None:
    holder, member = holder_and_member(rt)
    far = clerk(rt, client, "gz-clerk", "440100")
    desk = clerk(rt, client, "eeds-clerk")
    foreign = counter_bind(client, far, bind_body(holder, "王建国", member, "李秀英"))
    unknown = counter_bind(client, desk, bind_body(id_number(seq=90), "王建国", member, "李秀英"))
    wrong_name = counter_bind(client, desk, bind_body(holder, "王建军", member, "李秀英"))
    assert foreign.status_code == unknown.status_code == wrong_name.status_code == 404
    assert foreign.json() == unknown.json() == wrong_name.json()
    r = counter_bind(client, desk, bind_body(holder, "王建国", member, "李秀"))
    assert (r.status_code, r.json()["code"]) == (422, "MEMBER_NOT_FOUND")
    r = counter_bind(client, desk, bind_body(holder, "王建国", holder, "王建国"))
    assert r.json()["code"] == "SELF_LINK"
    assert links(rt) == 0


def test_bind_is_idempotent(rt: Runtime, client: TestClient) -> None:
    holder, member = holder_and_member(rt)
    desk = clerk(rt, client, "eeds-clerk")
    body = bind_body(holder, "王建国", member, "李秀英")
    first = counter_bind(client, desk, body, key="bind-1")
    again = counter_bind(client, desk, body, key="bind-1")
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    r = counter_bind(client, desk, {**body, "relation": "sibling"}, key="bind-1")
    assert (r.status_code, r.json()["code"]) == (409, "IDEMPOTENCY_MISMATCH")
    assert links(rt) == 1
