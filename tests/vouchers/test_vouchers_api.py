"""E-vouchers over HTTP on both databases: a holder shows a member's voucher, an
institution redeems it and pays with it once; every refusal has its own code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.accounting.reconcile import reconcile
from qinqing.audit.models import AuditEntry
from qinqing.kit.clock import FrozenClock
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import LedgerAccount
from qinqing.payments.models import Payment
from qinqing.runtime import Runtime
from qinqing.vouchers import rules
from qinqing.vouchers.models import Voucher
from support.accounts import by_id
from support.family import new_person
from support.ledger import authorize_body, institution_headers
from support.vouchers import API, Scene, issue, pay, redeem, scene, token_for


@pytest.fixture
def s(rt: Runtime, client: TestClient) -> Scene:
    return scene(rt, client, relation="father", yearly_limit_fen=50_000)


@pytest.fixture(autouse=True)
def _reconciles(rt: Runtime) -> Iterator[None]:
    yield
    with rt.db.unit_of_work() as session:
        assert reconcile(session) == []


def _held(rt: Runtime, s: Scene) -> tuple[int, int]:
    with rt.db.unit_of_work() as session:
        a = session.execute(
            select(LedgerAccount).where(LedgerAccount.code == personal_code(s.made.holder_id))
        ).scalar_one()
        return a.balance_fen, a.held_fen


# --- issue ------------------------------------------------------------------------


def test_holder_issues_a_members_voucher_with_a_scannable_qr(
    rt: Runtime, client: TestClient, s: Scene, clock: FrozenClock
) -> None:
    r = issue(client, s.made.holder_headers, s.link_id)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"token", "expires_at", "qr_svg"}
    ttl = rt.policies.policy("150600").voucher_ttl_seconds
    assert ttl == 60
    assert body["expires_at"].startswith((clock.now() + timedelta(seconds=ttl)).isoformat()[:19])
    assert body["qr_svg"].startswith("<svg") and 'viewBox="0 0 ' in body["qr_svg"]
    # No personal data in clear in the token.
    for secret in (s.made.member.id_number, s.made.member.name, str(s.made.member_id)):
        assert secret not in body["token"]


def test_a_person_issues_their_own_voucher(client: TestClient, s: Scene) -> None:
    r = issue(client, s.made.member_headers)
    assert r.status_code == 201, r.text


def test_a_stranger_gets_the_same_404_as_for_an_unknown_link(
    rt: Runtime, client: TestClient, s: Scene
) -> None:
    stranger = new_person(rt, name="路人", client=client)
    foreign = issue(client, stranger.headers, s.link_id)
    unknown = issue(client, stranger.headers, "00000000-0000-4000-8000-000000000000")
    garbage = issue(client, stranger.headers, "not-a-link")
    assert foreign.status_code == unknown.status_code == garbage.status_code == 404
    assert foreign.json() == unknown.json() == garbage.json()
    assert foreign.json()["code"] == "NOT_FOUND"


def test_the_member_cannot_show_the_holders_voucher(client: TestClient, s: Scene) -> None:
    r = issue(client, s.made.member_headers, s.link_id)
    assert r.status_code == 403 and r.json()["code"] == "VOUCHER_HOLDER_ONLY"


def test_staff_and_institutions_cannot_issue(client: TestClient, s: Scene) -> None:
    r = issue(client, s.inst, s.link_id)
    assert r.status_code == 403


def test_an_ended_link_shows_no_voucher_and_voids_the_ones_shown(
    rt: Runtime, client: TestClient, s: Scene
) -> None:
    token = token_for(client, s)
    _end_link(rt, s)
    r = issue(client, s.made.holder_headers, s.link_id)
    assert r.status_code == 409 and r.json()["code"] == "VOUCHER_LINK_NOT_ACTIVE"
    assert redeem(client, s.inst, token).json()["code"] == "VOUCHER_INVALID"


def _end_link(rt: Runtime, s: Scene) -> None:
    from sqlalchemy import update

    from qinqing.family.models import FamilyLink

    with rt.db.unit_of_work() as session:
        session.execute(
            update(FamilyLink).where(FamilyLink.id == uuid.UUID(s.link_id)).values(status="ended")
        )


def test_issuing_is_rate_limited_per_person_with_retry_after(
    rt: Runtime, client: TestClient, s: Scene, clock: FrozenClock
) -> None:
    for _ in range(rules.ISSUE_LIMIT):
        assert issue(client, s.made.holder_headers, s.link_id).status_code == 201
        clock.advance(timedelta(seconds=1))
    r = issue(client, s.made.holder_headers)
    assert r.status_code == 429 and r.json()["code"] == "VOUCHER_RATE_LIMITED"
    wait = int(r.headers["retry-after"])
    assert wait == 60 - rules.ISSUE_LIMIT  # the oldest of the window leaves it then
    # Another person is not affected.
    assert issue(client, s.made.member_headers).status_code == 201
    clock.advance(timedelta(seconds=wait))
    assert issue(client, s.made.holder_headers).status_code == 201


def test_issuing_is_audited_without_the_token(rt: Runtime, client: TestClient, s: Scene) -> None:
    token = token_for(client, s)
    with rt.db.unit_of_work() as session:
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "voucher.issued")
        ).scalar_one()
        assert entry.details["link_id"] == s.link_id
        assert entry.channel == "app" and entry.actor_kind == "person"
        assert token not in repr(entry.details) and token.split(".")[0] not in repr(entry.details)


# --- redeem -----------------------------------------------------------------------


def test_redeem_names_the_member_masked_and_what_mutual_aid_can_pay(
    client: TestClient, s: Scene
) -> None:
    token = token_for(client, s)
    r = redeem(client, s.inst, token)
    assert r.status_code == 200, r.text
    body = r.json()
    member = s.made.member
    assert body["kind"] == "family"
    assert body["person"]["name"] == member.name
    assert body["person"]["id_number"] == member.id_number[:6] + "*" * 8 + member.id_number[-4:]
    assert body["person"]["status"] == "active" and body["person"]["scheme"] == "employee"
    aid = body["mutual_aid"]
    assert aid["link_id"] == s.link_id and aid["relation"] == "father" and aid["enabled"]
    assert aid["holder_name"] == "绑**"
    # Funded 100 000, limit 50 000: what can be paid is the limit, not the balance.
    assert (aid["yearly_limit_fen"], aid["used_this_year_fen"], aid["payable_fen"]) == (
        50_000,
        0,
        50_000,
    )
    assert aid["blocked_by"] is None
    assert "balance_fen" not in r.text and "100000" not in r.text
    assert s.made.holder.id_number not in r.text and member.id_number not in r.text


def test_payable_is_the_smaller_of_available_and_what_the_limit_leaves(
    client: TestClient, s: Scene
) -> None:
    assert pay(client, s.inst, token_for(client, s), 30_000, "FIRST").status_code == 201
    aid = redeem(client, s.inst, token_for(client, s)).json()["mutual_aid"]
    assert (aid["used_this_year_fen"], aid["payable_fen"]) == (30_000, 20_000)


def test_payable_is_capped_by_the_holders_available_balance(
    rt: Runtime, client: TestClient
) -> None:
    s = scene(rt, client, funds_fen=12_345, relation="spouse")
    aid = redeem(client, s.inst, token_for(client, s)).json()["mutual_aid"]
    assert aid["yearly_limit_fen"] is None and aid["payable_fen"] == 12_345


def test_a_link_without_mutual_aid_redeems_but_cannot_pay(rt: Runtime, client: TestClient) -> None:
    s = scene(rt, client, mutual_aid=False)
    token = token_for(client, s)
    aid = redeem(client, s.inst, token).json()["mutual_aid"]
    assert aid["enabled"] is False and aid["payable_fen"] == 0
    assert aid["blocked_by"] == "NO_MUTUAL_AID_LINK"
    r = pay(client, s.inst, token, 100, "NOAID")
    assert r.status_code == 409 and r.json()["code"] == "NO_MUTUAL_AID_LINK"


def test_a_self_voucher_names_the_person_and_offers_no_mutual_aid(
    client: TestClient, s: Scene
) -> None:
    r = issue(client, s.made.holder_headers)
    body = redeem(client, s.inst, r.json()["token"]).json()
    assert body["kind"] == "self" and body["mutual_aid"] is None
    assert body["person"]["name"] == s.made.holder.name


def test_redeem_does_not_use_the_voucher_up(client: TestClient, s: Scene) -> None:
    token = token_for(client, s)
    assert redeem(client, s.inst, token).status_code == 200
    assert redeem(client, s.inst, token).status_code == 200
    assert pay(client, s.inst, token, 1_000, "AFTER-REDEEM").status_code == 201


def test_forged_mistyped_and_unknown_tokens_are_invalid(
    rt: Runtime, client: TestClient, s: Scene
) -> None:
    token = token_for(client, s)
    rand, mac = token.split(".")
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    for bad in (f"{rand}.{flipped}", rand, "x", f"{rand}.{mac}x", "A" * 22 + "." + "A" * 22):
        r = redeem(client, s.inst, bad)
        assert (r.status_code, r.json()["code"]) == (404, "VOUCHER_INVALID"), bad
        assert set(r.json()) == {"type", "title", "status", "code", "detail"}
        p = pay(client, s.inst, bad, 100, "FORGED")
        assert (p.status_code, p.json()["code"]) == (404, "VOUCHER_INVALID"), bad


def test_a_token_signed_with_another_key_is_invalid(
    rt: Runtime, client: TestClient, s: Scene
) -> None:
    from qinqing.identity.vault import Vault, generate_key, parse_key
    from qinqing.vouchers import tokens

    other, _ = tokens.new_token(Vault(parse_key(generate_key())))
    assert redeem(client, s.inst, other).json()["code"] == "VOUCHER_INVALID"


def test_expired_voucher_by_the_injectable_clock(
    client: TestClient, s: Scene, clock: FrozenClock
) -> None:
    token = token_for(client, s)
    clock.advance(timedelta(seconds=59))
    assert redeem(client, s.inst, token).status_code == 200
    clock.advance(timedelta(seconds=1))
    r = redeem(client, s.inst, token)
    assert (r.status_code, r.json()["code"]) == (409, "VOUCHER_EXPIRED")
    p = pay(client, s.inst, token, 100, "LATE")
    assert (p.status_code, p.json()["code"]) == (409, "VOUCHER_EXPIRED")


def test_the_lifetime_comes_from_the_region_policy(
    rt: Runtime, client: TestClient, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = scene(rt, client)
    policy = rt.policies.policy("150600").model_copy(update={"voucher_ttl_seconds": 300})
    monkeypatch.setattr(rt.policies, "policy", lambda code: policy)
    token = token_for(client, s)
    clock.advance(timedelta(seconds=299))
    assert redeem(client, s.inst, token).status_code == 200


def test_a_foreign_region_institution_gets_region_mismatch_and_nothing_else(
    rt: Runtime, client: TestClient, s: Scene
) -> None:
    token = token_for(client, s)
    foreign = institution_headers(rt, client, "440100")
    r = redeem(client, foreign, token)
    assert (r.status_code, r.json()["code"]) == (403, "REGION_MISMATCH")
    assert s.made.member.name not in r.text
    p = pay(client, foreign, token, 100, "FOREIGN")
    assert (p.status_code, p.json()["code"]) == (403, "REGION_MISMATCH")
    # The refusal claimed nothing: the home institution still can use it.
    assert pay(client, s.inst, token, 100, "HOME").status_code == 201


def test_the_first_institution_to_redeem_is_the_only_one(
    rt: Runtime, client: TestClient, s: Scene
) -> None:
    token = token_for(client, s)
    other = institution_headers(rt, client)
    assert redeem(client, s.inst, token).status_code == 200
    assert redeem(client, other, token).json()["code"] == "VOUCHER_USED"
    assert pay(client, other, token, 100, "OTHER").json()["code"] == "VOUCHER_USED"


# --- pay --------------------------------------------------------------------------


def test_pay_by_voucher_holds_on_the_holders_account_and_uses_it_up(
    rt: Runtime, client: TestClient, s: Scene
) -> None:
    token = token_for(client, s)
    r = pay(client, s.inst, token, 23_050, "BILL-V1")
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["status"] == "authorized" and p["amount_fen"] == 23_050
    assert _held(rt, s) == (100_000, 23_050)
    with rt.db.unit_of_work() as session:
        payment = by_id(session, Payment, uuid.UUID(p["payment_id"]))
        assert payment is not None
        assert (payment.holder_id, payment.member_id) == (s.made.holder_id, s.made.member_id)
        v = session.execute(select(Voucher)).scalar_one()
        assert v.used_at is not None and str(v.payment_id) == p["payment_id"]
    again = pay(client, s.inst, token, 100, "BILL-V2")
    assert (again.status_code, again.json()["code"]) == (409, "VOUCHER_USED")
    assert redeem(client, s.inst, token).json()["code"] == "VOUCHER_USED"
    # The hold settles like any other.
    r = client.post(
        f"{API}/payments/{p['payment_id']}/settle", json={"amount_fen": 20_000}, headers=s.inst
    )
    assert r.status_code == 200 and r.json()["released_fen"] == 3_050
    assert _held(rt, s) == (80_000, 0)


def test_a_refused_payment_leaves_the_voucher_usable(client: TestClient, s: Scene) -> None:
    token = token_for(client, s)
    r = pay(client, s.inst, token, 50_001, "TOO-MUCH")
    assert (r.status_code, r.json()["code"]) == (409, "YEARLY_LIMIT_EXCEEDED")
    assert pay(client, s.inst, token, 50_000, "JUST-RIGHT").status_code == 201


def test_a_self_voucher_cannot_pay(rt: Runtime, client: TestClient, s: Scene) -> None:
    token = issue(client, s.made.holder_headers).json()["token"]
    r = pay(client, s.inst, token, 100, "SELF")
    assert (r.status_code, r.json()["code"]) == (409, "VOUCHER_NOT_FAMILY")
    assert _held(rt, s) == (100_000, 0)


def test_exactly_one_form_of_authorization(client: TestClient, s: Scene) -> None:
    token = token_for(client, s)
    numbers = authorize_body_for(s)
    for body in (
        {**numbers, "voucher_token": token},
        {"holder_id_number": s.made.holder.id_number, "voucher_token": token},
        {"member_id_number": s.made.member.id_number},
        {},
    ):
        r = client.post(
            f"{API}/payments/authorize",
            json={**body, "amount_fen": 100, "reference": "FORM"},
            headers=s.inst,
        )
        assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_ERROR"), body
        assert token not in r.text and s.made.member.id_number not in r.text
    # The ID-number form still works.
    r = client.post(
        f"{API}/payments/authorize",
        json={**numbers, "amount_fen": 100, "reference": "IDS"},
        headers=s.inst,
    )
    assert r.status_code == 201, r.text


def authorize_body_for(s: Scene) -> dict[str, str]:
    return {
        "holder_id_number": s.made.holder.id_number,
        "member_id_number": s.made.member.id_number,
    }


def test_idempotent_retry_replays_the_payment(rt: Runtime, client: TestClient, s: Scene) -> None:
    token = token_for(client, s)
    key = {"Idempotency-Key": "hospital-retry-1"}
    first = pay(client, s.inst, token, 5_000, "IDEM", headers=key)
    again = pay(client, s.inst, token, 5_000, "IDEM", headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert _held(rt, s) == (100_000, 5_000)


def test_batch_mixes_both_forms_and_uses_a_voucher_once(
    rt: Runtime, client: TestClient, s: Scene
) -> None:
    token = token_for(client, s)
    self_token = issue(client, s.made.holder_headers).json()["token"]
    ops = [
        {"op": "authorize", "voucher_token": token, "amount_fen": 1_000, "reference": "B1"},
        {"op": "authorize", "voucher_token": token, "amount_fen": 2_000, "reference": "B2"},
        {"op": "authorize", "voucher_token": self_token, "amount_fen": 1, "reference": "B3"},
        {"op": "authorize", **authorize_body(_fam(s), 3_000, "B4")},
        {"op": "authorize", "voucher_token": "forged.token", "amount_fen": 1, "reference": "B5"},
    ]
    r = client.post(f"{API}/payments/batch", json={"operations": ops}, headers=s.inst)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["ok"] for x in results] == [True, False, False, True, False]
    assert [x["code"] for x in results] == [
        None,
        "VOUCHER_USED",
        "VOUCHER_NOT_FAMILY",
        None,
        "VOUCHER_INVALID",
    ]
    assert _held(rt, s) == (100_000, 4_000)
    assert pay(client, s.inst, token, 1, "AFTER-BATCH").json()["code"] == "VOUCHER_USED"


def test_a_batch_refusal_does_not_use_the_voucher(client: TestClient, s: Scene) -> None:
    token = token_for(client, s)
    ops = [{"op": "authorize", "voucher_token": token, "amount_fen": 60_000, "reference": "X"}]
    r = client.post(f"{API}/payments/batch", json={"operations": ops}, headers=s.inst)
    assert r.json()["results"][0]["code"] == "YEARLY_LIMIT_EXCEEDED"
    assert pay(client, s.inst, token, 1_000, "Y").status_code == 201


def _fam(s: Scene) -> object:
    from support.ledger import Family

    return Family(
        s.made.holder_id,
        s.made.member_id,
        s.made.holder.id_number,
        s.made.member.id_number,
        uuid.UUID(s.link_id),
    )


def test_purged_token_look_ups_answer_invalid_and_keep_the_record(
    rt: Runtime, client: TestClient, s: Scene, clock: FrozenClock
) -> None:
    from qinqing.vouchers.service import purge_tokens

    old = token_for(client, s)
    clock.advance(timedelta(days=1, seconds=61))
    fresh = token_for(client, s)
    with rt.db.unit_of_work() as session:
        assert purge_tokens(session, clock.now() - timedelta(days=1)) == 1
    assert redeem(client, s.inst, old).json()["code"] == "VOUCHER_INVALID"
    assert redeem(client, s.inst, fresh).status_code == 200
    with rt.db.unit_of_work() as session:
        assert len(session.execute(select(Voucher)).all()) == 2
