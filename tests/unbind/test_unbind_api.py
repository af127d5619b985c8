"""SPEC story 1 end to end through the API, on SQLite and PostgreSQL: the unbind
check, verification, idempotency, who may unbind, and the policy differences."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from qinqing.audit import service as audit
from qinqing.auth.models import PersonAccount
from qinqing.kit.clock import FrozenClock
from qinqing.persons.models import Person
from qinqing.runtime import Runtime
from qinqing.unbind.models import UnbindRequest
from support.accounts import STAFF_PASSWORD, add_client, add_staff, id_number, login
from support.banks import confirm_as_person
from support.ledger import fund, institution_headers
from support.unbind import (
    API,
    PIN,
    WRONG_PIN,
    audit_actions,
    codes,
    count_requests,
    face_verification,
    family,
    load_link,
    notifications,
    party,
    pin_verification,
)

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en"}


def check(client: TestClient, headers: dict[str, str], link_id: object, **params: str) -> Any:
    r = client.get(
        f"{API}/family/links/{link_id}/unbind-check", headers=headers, params=params or None
    )
    return r


def unbind(
    client: TestClient,
    headers: dict[str, str],
    link_id: object,
    body: dict[str, Any],
    key: str | None = None,
) -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(
        f"{API}/family/links/{link_id}/unbind", headers={**headers, **extra}, json=body
    )


def set_status(rt: Runtime, person: Person, status: str) -> None:
    with rt.db.unit_of_work() as s:
        s.execute(update(Person).where(Person.id == person.id).values(status=status))


def failures(rt: Runtime, person: Person) -> int:
    with rt.db.unit_of_work() as s:
        return s.execute(
            select(PersonAccount.payment_failures).where(PersonAccount.person_id == person.id)
        ).scalar_one()


def test_story_one_in_an_auto_region(rt: Runtime, client: TestClient) -> None:
    holder, h, member, _, link = family(rt, client)
    set_status(rt, holder, "arrears")

    # 我的 → 我的家庭成员 → member → 解除绑定: the check shows what stands in the way.
    r = check(client, {**h, **ZH}, link.id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["eligible"] is False
    assert body["on_behalf_of"] == "holder"
    assert body["review_required"] is False
    [blocker] = body["blockers"]
    assert blocker["code"] == "ACCOUNT_IN_ARREARS"
    assert "欠费" in blocker["message"]
    assert "补缴" in blocker["hint"]
    en = check(client, {**h, **EN}, link.id).json()["blockers"][0]
    assert "arrears" in en["message"]

    # The arrears are paid: eligible now.
    set_status(rt, holder, "active")
    r = check(client, h, link.id)
    assert r.json() == {
        "eligible": True,
        "blockers": [],
        "on_behalf_of": "holder",
        "review_required": False,
        "region_code": "150600",
    }

    # Without verification, and with a wrong payment password: refused, each a blocker.
    r = unbind(client, h, link.id, {})
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "UNBIND_REFUSED"
    assert codes(r.json()) == ["VERIFICATION_REQUIRED"]
    r = unbind(client, {**h, **ZH}, link.id, {"verification": pin_verification(WRONG_PIN)}, "k-1")
    assert r.status_code == 409
    assert codes(r.json()) == ["VERIFICATION_FAILED"]
    assert r.json()["blockers"][0]["params"] == {"remaining_attempts": 4}
    assert "支付密码" in r.json()["blockers"][0]["hint"]
    assert failures(rt, holder) == 1  # the failure was committed although refused
    assert load_link(rt, link.id).status == "active"
    assert count_requests(rt) == 0

    # The right password, with an Idempotency-Key (the refused k-1 was not stored).
    good = {"verification": pin_verification(), "reason": "家庭情况变化"}
    r = unbind(client, h, link.id, good, "k-1")
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["request"]["status"] == "completed"
    assert first["link"]["status"] == "ended"
    assert first["link"]["ended_by_kind"] == "person"
    assert first["link"]["ended_channel"] == "app"
    assert first["link"]["end_reason"] == "家庭情况变化"
    assert first["link"]["your_role"] == "holder"
    assert "Idempotent-Replayed" not in r.headers
    assert failures(rt, holder) == 0

    # A retry replays the first answer and changes nothing.
    r = unbind(client, h, link.id, good, "k-1")
    assert r.status_code == 200
    assert r.json() == first
    assert r.headers["Idempotent-Replayed"] == "true"
    assert count_requests(rt) == 1
    assert audit_actions(rt) == ["unbind.completed"]

    # The same key with another body is refused.
    r = unbind(client, h, link.id, {**good, "reason": "另一个理由"}, "k-1")
    assert r.status_code == 409
    assert r.json()["code"] == "IDEMPOTENCY_MISMATCH"

    # The link has ended: the check and a new unbind both say so.
    r = check(client, {**h, **ZH}, link.id)
    assert codes(r.json()) == ["LINK_NOT_ACTIVE"]
    assert r.json()["blockers"][0]["message"] == "这条亲情关系已经解除了。"
    r = unbind(client, h, link.id, good, "k-2")
    assert r.status_code == 409
    assert codes(r.json()) == ["LINK_NOT_ACTIVE"]

    ended = load_link(rt, link.id)
    assert ended.status == "ended"
    assert ended.ended_at == rt.clock.now()
    assert sorted(notifications(rt)) == sorted(
        [(holder.id, "unbind.completed"), (member.id, "unbind.completed")]
    )
    with rt.db.unit_of_work() as s:
        assert audit.verify(s).ok


def test_member_unbinds_with_a_face_check(rt: Runtime, client: TestClient) -> None:
    holder, _, member, m, link = family(rt, client)
    r = unbind(client, m, link.id, {"verification": face_verification(holder.id)})
    assert r.status_code == 409
    assert codes(r.json()) == ["VERIFICATION_FAILED"]
    r = unbind(client, m, link.id, {"verification": face_verification(member.id)})
    assert r.status_code == 200, r.text
    assert r.json()["request"]["status"] == "completed"
    assert r.json()["link"]["your_role"] == "member"
    with rt.db.unit_of_work() as s:
        req = s.execute(select(UnbindRequest)).scalar_one()
        assert req.on_behalf_of == "member"
        assert req.initiator_person_id == member.id
        assert req.verification_method == "face"


def test_five_wrong_passwords_lock_verification(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    holder, h, _, _, link = family(rt, client)
    wrong = {"verification": pin_verification(WRONG_PIN)}
    for remaining in (4, 3, 2, 1):
        r = unbind(client, h, link.id, wrong)
        assert codes(r.json()) == ["VERIFICATION_FAILED"]
        assert r.json()["blockers"][0]["params"]["remaining_attempts"] == remaining
    r = unbind(client, h, link.id, wrong)
    assert r.status_code == 409
    assert codes(r.json()) == ["VERIFICATION_LOCKED"]
    # Locked: even the right password is refused ...
    r = unbind(client, {**h, **ZH}, link.id, {"verification": pin_verification()})
    assert codes(r.json()) == ["VERIFICATION_LOCKED"]
    assert "锁定" in r.json()["blockers"][0]["message"]
    # ... but the check stays eligible while a face check is possible ...
    assert check(client, h, link.id).json()["eligible"] is True
    # ... and says "locked" once it is not.
    rt.settings.face_provider = "none"
    body = check(client, h, link.id).json()
    assert codes(body) == ["VERIFICATION_LOCKED"]
    r = unbind(client, h, link.id, {"verification": face_verification(holder.id)})
    assert codes(r.json()) == ["FACE_UNAVAILABLE"]
    # Three hours later the password works again.
    clock.advance(timedelta(hours=3, seconds=1))
    h = login(client, "13800138001")  # the app token has expired meanwhile
    assert check(client, h, link.id).json()["eligible"] is True
    r = unbind(client, h, link.id, {"verification": pin_verification()})
    assert r.status_code == 200, r.text
    assert audit_actions(rt, "payment_password.locked") == ["payment_password.locked"]


def test_a_foreign_user_sees_404_and_changes_nothing(rt: Runtime, client: TestClient) -> None:
    _, _, _, _, link = family(rt, client)
    _, stranger = party(rt, client, name="赵六", phone="13800138009", seq=19)
    assert check(client, stranger, link.id).status_code == 404
    r = unbind(client, stranger, link.id, {"verification": pin_verification()})
    assert r.status_code == 404
    assert r.json()["code"] == "NOT_FOUND"
    for bad in ("not-a-uuid", str(uuid.uuid4()), "1"):
        assert check(client, stranger, bad).status_code == 404
        assert unbind(client, stranger, bad, {}).status_code == 404
    assert load_link(rt, link.id).status == "active"
    assert count_requests(rt) == 0
    assert audit_actions(rt) == []
    assert notifications(rt) == []
    assert client.get(f"{API}/family/links/{link.id}/unbind-check").status_code == 401


def test_person_may_not_act_for_someone_else(rt: Runtime, client: TestClient) -> None:
    _, h, _, _, link = family(rt, client)
    r = check(client, h, link.id, on_behalf_of="member")
    assert r.status_code == 422
    assert r.json()["code"] == "PARAMETER_NOT_ALLOWED"
    r = unbind(client, h, link.id, {"verification": pin_verification(), "customer_id_number": "x"})
    assert r.status_code == 422
    assert load_link(rt, link.id).status == "active"


def test_only_the_initiators_status_blocks_and_only_where_the_policy_says(
    rt: Runtime, client: TestClient
) -> None:
    _, h, member, m, link = family(rt, client)
    set_status(rt, member, "suspended")
    assert check(client, h, link.id).json()["eligible"] is True
    assert codes(check(client, m, link.id).json()) == ["ACCOUNT_SUSPENDED"]
    r = unbind(client, m, link.id, {"verification": pin_verification()})
    assert codes(r.json()) == ["ACCOUNT_SUSPENDED"]
    set_status(rt, member, "terminated")
    assert codes(check(client, m, link.id).json()) == ["ACCOUNT_TERMINATED"]
    r = unbind(client, h, link.id, {"verification": pin_verification()})
    assert r.status_code == 200, r.text


def test_beijing_does_not_block_arrears(rt: Runtime, client: TestClient) -> None:
    holder, h, _, _, link = family(rt, client, region="110000")
    set_status(rt, holder, "arrears")
    assert check(client, h, link.id).json()["eligible"] is True
    set_status(rt, holder, "suspended")
    assert codes(check(client, h, link.id).json()) == ["ACCOUNT_SUSPENDED"]
    set_status(rt, holder, "arrears")
    r = unbind(client, h, link.id, {"verification": pin_verification()})
    assert r.status_code == 200, r.text


def test_cooling_off_in_chongqing(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _, h, _, m, link = family(rt, client, region="500000")
    r = check(client, {**h, **ZH}, link.id)
    [blocker] = r.json()["blockers"]
    assert blocker["code"] == "COOLING_OFF"
    # Bound 2026-11-23 17:00 Beijing time; 30 days.
    assert blocker["params"] == {"until": "2026-12-23", "days": 30}
    assert "2026年12月23日" in blocker["hint"]
    r = unbind(client, m, link.id, {"verification": pin_verification(WRONG_PIN)})
    assert codes(r.json()) == ["COOLING_OFF", "VERIFICATION_FAILED"]
    clock.advance(timedelta(days=29))
    h, m = login(client, "13800138001"), login(client, "13800138002")  # fresh tokens
    assert codes(check(client, h, link.id).json()) == ["COOLING_OFF"]
    clock.advance(timedelta(days=1))
    h, m = login(client, "13800138001"), login(client, "13800138002")
    assert check(client, h, link.id).json()["eligible"] is True
    r = unbind(client, m, link.id, {"verification": pin_verification()})
    assert r.status_code == 200, r.text


def _client_headers(client: TestClient, client_id: str, secret: str) -> dict[str, str]:
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_bank_unbinds_for_its_customer(rt: Runtime, client: TestClient) -> None:
    _, _, _, _, link = family(rt, client)
    bank_id, secret = add_client(rt, "bank", "150600")
    bank = _client_headers(client, bank_id, secret)
    member_number = id_number(seq=12)
    # Before the member links an account with this bank, the link is not the bank's to see.
    assert check(client, bank, link.id, customer="member").status_code == 404
    r = client.post(
        f"{API}/bank-links",
        headers=bank,
        json={"account_number": "6214830123452343", "id_number": member_number, "name": "李秀英"},
    )
    assert r.status_code == 202, r.text
    assert confirm_as_person(client, r.json()["id"])  # the person confirms in the app
    # Only the member banks here, so a check that names no side is the member's.
    inferred = check(client, bank, link.id)
    assert inferred.status_code == 200, inferred.text
    assert inferred.json()["on_behalf_of"] == "member"
    assert check(client, bank, link.id, on_behalf_of="member").status_code == 422
    body = check(client, bank, link.id, customer="member").json()
    assert body["eligible"] is True
    assert body["on_behalf_of"] == "member"
    # The holder is not the bank's customer: the same 404 as an unknown link.
    assert check(client, bank, link.id, customer="holder").status_code == 404

    stranger = id_number(seq=30)
    r = unbind(
        client,
        bank,
        link.id,
        {"verification": pin_verification(), "customer_id_number": stranger},
    )
    assert r.status_code == 404
    r = unbind(
        client,
        bank,
        link.id,
        {"verification": pin_verification(), "customer_id_number": "123"},
    )
    assert r.status_code == 422
    r = unbind(
        client,
        bank,
        link.id,
        {"verification": pin_verification(), "customer_id_number": member_number},
        key="bank-1",
    )
    assert r.status_code == 200, r.text
    assert r.json()["link"]["ended_by_kind"] == "client"
    assert r.json()["link"]["ended_channel"] == "bank"
    assert r.json()["link"]["member"]["id_number"] != member_number  # masked
    assert load_link(rt, link.id).ended_by_id == bank_id


def test_a_bank_that_names_no_customer_acts_for_its_only_customer_on_the_link(
    rt: Runtime, client: TestClient
) -> None:
    """The plain body `{verification, reason}` works for a bank: the party it banks
    with is the one who unbinds, verified by that party's own payment password."""
    _, _, _, _, link = family(rt, client)
    bank = _client_headers(client, *add_client(rt, "bank", "150600"))
    holder_number = id_number(seq=11)
    r = client.post(
        f"{API}/bank-links",
        headers=bank,
        json={"account_number": "6214830123452343", "id_number": holder_number, "name": "王建国"},
    )
    assert r.status_code == 202, r.text
    assert confirm_as_person(client, r.json()["id"])  # the person confirms in the app
    assert check(client, bank, link.id).json()["on_behalf_of"] == "holder"
    r = unbind(client, bank, link.id, {"verification": pin_verification(WRONG_PIN)})
    assert r.status_code == 409
    assert codes(r.json()) == ["VERIFICATION_FAILED"]
    r = unbind(client, bank, link.id, {"verification": pin_verification(), "reason": "手机银行"})
    assert r.status_code == 200, r.text
    assert r.json()["request"]["status"] == "completed"
    assert r.json()["link"]["status"] == "ended"
    assert load_link(rt, link.id).status == "ended"


def test_a_bank_whose_customers_are_both_parties_must_say_which(
    rt: Runtime, client: TestClient
) -> None:
    _, _, _, _, link = family(rt, client)
    bank = _client_headers(client, *add_client(rt, "bank", "150600"))
    for seq, name, account in (
        (11, "王建国", "6214830123452343"),
        (12, "李秀英", "6214830000012343"),
    ):
        r = client.post(
            f"{API}/bank-links",
            headers=bank,
            json={"account_number": account, "id_number": id_number(seq=seq), "name": name},
        )
        assert r.status_code == 202, r.text
        assert confirm_as_person(client, r.json()["id"])  # the person confirms in the app
    r = check(client, bank, link.id)
    assert r.status_code == 422
    assert r.json()["code"] == "PARTY_REQUIRED"
    r = unbind(client, bank, link.id, {"verification": pin_verification()})
    assert r.status_code == 422
    assert r.json()["code"] == "PARTY_REQUIRED"
    assert check(client, bank, link.id, customer="holder").json()["eligible"] is True
    assert load_link(rt, link.id).status == "active"


def test_a_bank_of_another_region_or_without_scope_is_refused(
    rt: Runtime, client: TestClient
) -> None:
    _, _, _, _, link = family(rt, client)
    other = _client_headers(client, *add_client(rt, "bank", "440100"))
    assert check(client, other, link.id, customer="holder").status_code == 404
    body = {"verification": pin_verification(), "customer_id_number": id_number(seq=11)}
    assert unbind(client, other, link.id, body).status_code == 404
    institution = _client_headers(client, *add_client(rt, "institution", "150600"))
    r = check(client, institution, link.id, customer="holder")
    assert r.status_code == 403
    assert unbind(client, institution, link.id, body).status_code == 403
    assert load_link(rt, link.id).status == "active"


def test_a_clerk_checks_on_behalf_of_a_party(rt: Runtime, client: TestClient) -> None:
    holder, _, _, _, link = family(rt, client)
    add_staff(rt, "clerk1", "clerk", "150600")
    add_staff(rt, "clerk2", "clerk", "440100")
    add_staff(rt, "review1", "reviewer", "150600")
    clerk = login(client, "clerk1", STAFF_PASSWORD)
    r = check(client, clerk, link.id)
    assert r.status_code == 422
    assert r.json()["code"] == "PARTY_REQUIRED"
    set_status(rt, holder, "arrears")
    body = check(client, clerk, link.id, on_behalf_of="holder").json()
    assert codes(body) == ["ACCOUNT_IN_ARREARS"]
    assert check(client, clerk, link.id, on_behalf_of="member").json()["eligible"] is True
    assert check(client, clerk, link.id, customer="member").status_code == 422
    far = login(client, "clerk2", STAFF_PASSWORD)
    assert check(client, far, link.id, on_behalf_of="holder").status_code == 404
    reviewer = login(client, "review1", STAFF_PASSWORD)
    assert check(client, reviewer, link.id, on_behalf_of="holder").status_code == 403
    # Clerks unbind at the counter, not through the app's endpoint.
    assert unbind(client, clerk, link.id, {"verification": pin_verification()}).status_code == 403


def test_pending_link_cannot_be_unbound(rt: Runtime, client: TestClient) -> None:
    _, h, _, _, link = family(rt, client, status="pending_consent")
    r = check(client, {**h, **EN}, link.id)
    assert codes(r.json()) == ["LINK_NOT_ACTIVE"]
    assert "waiting for your relative" in r.json()["blockers"][0]["message"]
    r = unbind(client, h, link.id, {"verification": pin_verification(PIN)})
    assert codes(r.json()) == ["LINK_NOT_ACTIVE"]


def test_idempotency_key_must_be_printable_ascii(rt: Runtime, client: TestClient) -> None:
    _, h, _, _, link = family(rt, client)
    good = {"verification": pin_verification()}
    for bad in ("x" * 129, "tab\there"):
        r = unbind(client, h, link.id, good, bad)
        assert r.status_code == 422
        assert r.json()["code"] == "IDEMPOTENCY_KEY_INVALID"
    assert load_link(rt, link.id).status == "active"
    r = unbind(client, h, link.id, good, "~" * 128)
    assert r.status_code == 200


def test_keys_are_per_caller(rt: Runtime, client: TestClient) -> None:
    _, h, _, m, link = family(rt, client)
    r = unbind(client, h, link.id, {"verification": pin_verification()}, "same-key")
    assert r.status_code == 200
    # The member's use of the same key is a request of its own (refused: ended).
    r = unbind(client, m, link.id, {"verification": pin_verification()}, "same-key")
    assert r.status_code == 409
    assert codes(r.json()) == ["LINK_NOT_ACTIVE"]


def test_unsettled_payments_block_until_settled_or_voided(rt: Runtime, client: TestClient) -> None:
    holder, h, _, _, link = family(rt, client)
    fund(rt, holder.id, 100_000)
    rt.settings.client_token_ttl_seconds = 30 * 24 * 3600
    inst = institution_headers(rt, client)
    bill = {"holder_id_number": id_number(seq=11), "member_id_number": id_number(seq=12)}
    held = []
    for ref, amount in (("BILL-1", 20_000), ("BILL-2", 3_050)):
        r = client.post(
            f"{API}/payments/authorize",
            json={**bill, "amount_fen": amount, "reference": ref},
            headers=inst,
        )
        assert r.status_code == 201, r.text
        held.append(r.json()["payment_id"])

    r = check(client, {**h, **ZH}, link.id)
    [blocker] = r.json()["blockers"]
    assert blocker["code"] == "UNSETTLED_PAYMENTS"
    assert blocker["params"] == {"count": 2, "total_fen": 23_050}
    assert blocker["message"] == "您有 2 笔共 230.50 元的医疗费用尚未结算。"
    r = unbind(client, h, link.id, {"verification": pin_verification()})
    assert codes(r.json()) == ["UNSETTLED_PAYMENTS"]

    r = client.post(f"{API}/payments/{held[0]}/settle", json={"amount_fen": 20_000}, headers=inst)
    assert r.status_code == 200, r.text
    assert check(client, h, link.id).json()["blockers"][0]["params"]["count"] == 1
    assert client.post(f"{API}/payments/{held[1]}/void", headers=inst).status_code == 200
    assert check(client, h, link.id).json()["eligible"] is True

    r = unbind(client, h, link.id, {"verification": pin_verification()})
    assert r.status_code == 200, r.text
    # From that moment no new payment can be authorized on the link.
    r = client.post(
        f"{API}/payments/authorize",
        json={**bill, "amount_fen": 100, "reference": "BILL-3"},
        headers=inst,
    )
    assert r.status_code == 409, r.text


def test_an_expired_hold_does_not_block(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    holder, _, _, _, link = family(rt, client)
    fund(rt, holder.id, 10_000)
    rt.settings.client_token_ttl_seconds = 30 * 24 * 3600
    inst = institution_headers(rt, client)
    r = client.post(
        f"{API}/payments/authorize",
        json={
            "holder_id_number": id_number(seq=11),
            "member_id_number": id_number(seq=12),
            "amount_fen": 500,
            "reference": "OLD",
        },
        headers=inst,
    )
    assert r.status_code == 201, r.text
    clock.advance(timedelta(hours=72, seconds=1))  # hold_expiry_hours
    h = login(client, "13800138001")
    assert check(client, h, link.id).json()["eligible"] is True
