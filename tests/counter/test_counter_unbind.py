"""POST /counter/unbind on SQLite and PostgreSQL: SPEC story 2 — the clerk checks the
document, records the paper form and unbinds on the person's behalf, under the
same blockers and review as the app."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.auth.models import IdDocumentFailures, StaffUser
from qinqing.identity.masking import mask_id_number
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from qinqing.unbind.models import UnbindRequest
from support.accounts import by_id, id_number
from support.counter import (
    API,
    audit_entries,
    clerk,
    counter_family,
    counter_unbind,
    staff,
    unbind_body,
)
from support.ledger import fund, institution_headers
from support.unbind import codes, count_requests, load_link, notifications

GZ = "440100"


def request_row(rt: Runtime, request_id: str) -> UnbindRequest:
    with rt.db.unit_of_work() as s:
        row = by_id(s, UnbindRequest, uuid.UUID(request_id))
        assert row is not None
        s.expunge(row)
        return row


def staff_id(rt: Runtime, username: str) -> str:
    with rt.db.unit_of_work() as s:
        return str(s.execute(select(StaffUser.id).where(StaffUser.username == username)).scalar())


def failures_of(rt: Runtime, person_id: uuid.UUID) -> int | None:
    with rt.db.unit_of_work() as s:
        row = s.get(IdDocumentFailures, person_id)
        return None if row is None else row.failures


def clerk_check(client: TestClient, desk: dict[str, str], link_id: object, party: str) -> Any:
    return client.get(
        f"{API}/family/links/{link_id}/unbind-check",
        headers=desk,
        params={"on_behalf_of": party},
    ).json()


def test_story_two_the_holder_unbinds_at_the_counter(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")

    body = unbind_body(fam.link_id, fam.holder_number, reason="老人到窗口申请解除")
    r = counter_unbind(client, desk, body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["request"]["status"] == "completed"
    assert answer["link"]["status"] == "ended"
    assert answer["link"]["ended_channel"] == "counter"
    # The answer is stored for replays: parties masked even for the clerk.
    assert answer["link"]["holder"]["id_number"] == mask_id_number(fam.holder_number)
    assert fam.holder_number not in r.text and fam.member_number not in r.text

    req = request_row(rt, answer["request"]["id"])
    assert (req.channel, req.actor_kind, req.actor_id) == (
        "counter",
        "staff",
        staff_id(rt, "eeds-clerk"),
    )
    assert (req.on_behalf_of, req.initiator_person_id) == ("holder", fam.holder.id)
    assert (req.verification_method, req.form_number) == ("id_document", "QQ-2026-000123")
    assert req.reason == "老人到窗口申请解除"
    link = load_link(rt, fam.link_id)
    assert (link.ended_by_kind, link.ended_channel) == ("staff", "counter")

    [entry] = audit_entries(rt, "unbind.completed")
    assert (entry.actor_kind, entry.channel) == ("staff", "counter")
    assert entry.details["form_number"] == "QQ-2026-000123"
    assert entry.details["id_document_type"] == "resident_id"
    assert entry.details["on_behalf_of"] == "holder"
    assert sorted(kind for _, kind in notifications(rt)) == ["unbind.completed"] * 2


def test_the_member_unbinds_with_a_medical_insurance_card(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    # 医保卡: its 社会保障号码 is the citizen ID number.
    body = unbind_body(
        fam.link_id, fam.member_number, on_behalf_of="member", doc_type="medical_card"
    )
    r = counter_unbind(client, desk, body)
    assert r.status_code == 200, r.text
    req = request_row(rt, r.json()["request"]["id"])
    assert (req.on_behalf_of, req.initiator_person_id) == ("member", fam.member.id)
    [entry] = audit_entries(rt, "unbind.completed")
    assert entry.details["id_document_type"] == "medical_card"


def test_a_document_that_is_not_the_partys_is_refused_and_counted(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    # The member's card presented for the holder.
    wrong = unbind_body(fam.link_id, fam.member_number, on_behalf_of="holder")
    r = counter_unbind(client, desk, wrong)
    assert r.status_code == 409
    problem = r.json()
    assert problem["code"] == "UNBIND_REFUSED"
    assert codes(problem) == ["VERIFICATION_FAILED"]
    blocker = problem["blockers"][0]
    assert blocker["params"]["remaining_attempts"] == 4
    assert "证件号码与办理人不一致" in blocker["message"]
    assert "支付密码" not in (blocker["message"] + (blocker["hint"] or ""))
    assert fam.member_number not in r.text
    assert load_link(rt, fam.link_id).status == "active"
    assert count_requests(rt) == 0
    # Counted and committed although refused; audited as a possible impersonation.
    assert failures_of(rt, fam.holder.id) == 1
    [mismatch] = audit_entries(rt, "counter.id_document_mismatch")
    assert mismatch.subject_id == str(fam.holder.id)
    assert mismatch.details == {
        "link_id": str(fam.link_id),
        "id_document_type": "resident_id",
        "locked": False,
    }

    # A correct document resets the count.
    other = counter_family(rt, seq=2)
    assert (
        counter_unbind(client, desk, unbind_body(other.link_id, fam.member_number)).json()[
            "blockers"
        ][0]["params"]["remaining_attempts"]
        == 4
    )
    good = unbind_body(other.link_id, other.holder_number)
    assert counter_unbind(client, desk, good).status_code == 200
    assert failures_of(rt, other.holder.id) == 0


def test_five_mismatches_lock_counter_unbinds_for_three_hours(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    stranger = id_number(seq=99)
    for remaining in (4, 3, 2, 1):
        r = counter_unbind(client, desk, unbind_body(fam.link_id, stranger))
        assert r.json()["blockers"][0]["params"]["remaining_attempts"] == remaining
    r = counter_unbind(client, desk, unbind_body(fam.link_id, stranger))
    assert codes(r.json()) == ["VERIFICATION_LOCKED"]
    assert "暂停" in r.json()["blockers"][0]["message"]
    until = clock.now() + timedelta(hours=3)
    assert r.json()["blockers"][0]["params"]["locked_until"] == until.isoformat()

    # Now even the right document is refused, and the clerk's check says so
    # for the holder (but not for the member, whose documents are fine).
    right = unbind_body(fam.link_id, fam.holder_number)
    assert codes(counter_unbind(client, desk, right).json()) == ["VERIFICATION_LOCKED"]
    assert codes(clerk_check(client, desk, fam.link_id, "holder")) == ["VERIFICATION_LOCKED"]
    assert clerk_check(client, desk, fam.link_id, "member")["eligible"] is True
    locked = client.post(
        f"{API}/counter/lookup", headers=desk, json={"id_number": fam.holder_number}
    ).json()
    assert locked["id_document_locked_until"] is not None
    assert load_link(rt, fam.link_id).status == "active"
    assert [e.details["locked"] for e in audit_entries(rt, "counter.id_document_mismatch")] == [
        False,
        False,
        False,
        False,
        True,
    ]

    clock.advance(timedelta(hours=3, seconds=1))
    desk = clerk_relogin(client)
    assert clerk_check(client, desk, fam.link_id, "holder")["eligible"] is True
    r = counter_unbind(client, desk, right)
    assert r.status_code == 200, r.text


def clerk_relogin(client: TestClient) -> dict[str, str]:
    from support.accounts import STAFF_PASSWORD, login

    return login(client, "eeds-clerk", STAFF_PASSWORD)


def test_the_apps_blockers_apply_at_the_counter(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    # An open hospital hold on the link: UNSETTLED_PAYMENTS, as in the app.
    fund(rt, fam.holder.id, 100_000)
    hospital = institution_headers(rt, client)
    r = client.post(
        f"{API}/payments/authorize",
        headers=hospital,
        json={
            "holder_id_number": fam.holder_number,
            "member_id_number": fam.member_number,
            "amount_fen": 23_050,
            "reference": "BILL-1",
        },
    )
    assert r.status_code in (200, 201), r.text
    with rt.db.unit_of_work() as s:
        from qinqing.persons.models import Person

        s.get(Person, fam.holder.id).status = "arrears"  # type: ignore[union-attr]

    r = counter_unbind(client, desk, unbind_body(fam.link_id, fam.holder_number))
    assert r.status_code == 409
    assert codes(r.json()) == ["ACCOUNT_IN_ARREARS", "UNSETTLED_PAYMENTS"]
    assert r.json()["blockers"][1]["params"] == {"count": 1, "total_fen": 23_050}
    # With a wrong document as well, one answer lists everything.
    r = counter_unbind(client, desk, unbind_body(fam.link_id, fam.member_number))
    assert codes(r.json()) == ["ACCOUNT_IN_ARREARS", "UNSETTLED_PAYMENTS", "VERIFICATION_FAILED"]
    # The member's status is normal: only the hold stands in their way.
    r = counter_unbind(
        client, desk, unbind_body(fam.link_id, fam.member_number, on_behalf_of="member")
    )
    assert codes(r.json()) == ["UNSETTLED_PAYMENTS"]
    assert load_link(rt, fam.link_id).status == "active"
    assert count_requests(rt) == 0


def test_a_link_that_is_not_active_cannot_be_unbound(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt, status="pending_consent")
    desk = clerk(rt, client, "eeds-clerk")
    r = counter_unbind(client, desk, unbind_body(fam.link_id, fam.holder_number))
    assert codes(r.json()) == ["LINK_NOT_ACTIVE"]


def test_a_review_region_waits_for_the_reviewer(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt, region=GZ)
    desk = clerk(rt, client, "gz-clerk", GZ)
    reviewer = staff(rt, client, "gz-review", "reviewer", GZ)

    r = counter_unbind(client, desk, unbind_body(fam.link_id, fam.holder_number))
    assert r.status_code == 200, r.text
    assert r.json()["request"]["status"] == "pending_review"
    assert r.json()["link"]["status"] == "unbinding"
    request_id = r.json()["request"]["id"]
    [entry] = audit_entries(rt, "unbind.requested")
    assert entry.details["form_number"] == "QQ-2026-000123"

    queue = client.get(f"{API}/review/unbind-requests", headers=reviewer).json()
    assert [(x["id"], x["channel"]) for x in queue["items"]] == [(request_id, "counter")]
    r = client.post(
        f"{API}/review/unbind-requests/{request_id}/decision",
        headers=reviewer,
        json={"decision": "approve", "comment": "材料齐全"},
    )
    assert r.status_code == 200, r.text
    link = load_link(rt, fam.link_id)
    assert (link.status, link.ended_channel, link.ended_by_kind) == ("ended", "counter", "staff")


def test_idempotency_key_replays_and_refuses_another_body(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    body = unbind_body(fam.link_id, fam.holder_number)

    first = counter_unbind(client, desk, body, key="counter-key-1")
    again = counter_unbind(client, desk, body, key="counter-key-1")
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert count_requests(rt) == 1

    other = {**body, "form_number": "QQ-2026-999999"}
    r = counter_unbind(client, desk, other, key="counter-key-1")
    assert r.status_code == 409
    assert r.json()["code"] == "IDEMPOTENCY_MISMATCH"
    assert count_requests(rt) == 1


def test_a_refused_document_does_not_burn_the_key(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    wrong = unbind_body(fam.link_id, fam.member_number)
    assert counter_unbind(client, desk, wrong, key="k-typo").status_code == 409
    # The clerk corrects the number and sends again with the same key.
    right = unbind_body(fam.link_id, fam.holder_number)
    r = counter_unbind(client, desk, right, key="k-typo")
    assert r.status_code == 200, r.text
    assert "Idempotent-Replayed" not in r.headers


def test_bad_form_numbers_and_documents_change_nothing(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    desk = clerk(rt, client, "eeds-clerk")
    # An ID number typed into the form-number field would be stored in clear.
    r = counter_unbind(
        client, desk, unbind_body(fam.link_id, fam.holder_number, form_number=fam.member_number)
    )
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["reason"]) == ("FORM_NUMBER_INVALID", "personal_data")
    assert fam.member_number not in r.text
    r = counter_unbind(
        client, desk, unbind_body(fam.link_id, fam.holder_number, form_number="表 001")
    )
    assert r.status_code == 422
    r = counter_unbind(client, desk, unbind_body(fam.link_id, fam.holder_number[:-1] + "Y"))
    assert r.status_code == 422
    assert r.json()["code"].startswith("ID_NUMBER_")
    body = unbind_body(fam.link_id, fam.holder_number, doc_type="passport")
    assert counter_unbind(client, desk, body).status_code == 422
    assert load_link(rt, fam.link_id).status == "active"
    assert failures_of(rt, fam.holder.id) is None


def test_links_of_another_region_and_unknown_links_are_404(rt: Runtime, client: TestClient) -> None:
    fam = counter_family(rt)
    far = clerk(rt, client, "gz-clerk", GZ)
    foreign = counter_unbind(client, far, unbind_body(fam.link_id, fam.holder_number))
    unknown = counter_unbind(client, far, unbind_body(uuid.uuid4(), fam.holder_number))
    malformed = counter_unbind(client, far, unbind_body("not-a-uuid", fam.holder_number))
    assert foreign.status_code == unknown.status_code == malformed.status_code == 404
    assert foreign.json() == unknown.json()
    assert load_link(rt, fam.link_id).status == "active"
    assert failures_of(rt, fam.holder.id) is None
