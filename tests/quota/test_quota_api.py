"""共济额度 across regions over the API, on both databases: a link beyond the holder's
scope is bound through a quota, the holder fills it, the member's payments and
resident contributions draw only on it, and what is left returns when the link
ends. The test clock is 2026-11-23 (China time)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from qinqing.audit.models import AuditEntry
from qinqing.kit.clock import FrozenClock
from qinqing.notify.models import Notification
from qinqing.runtime import Runtime
from support.family import PAYMENT_PASSWORD, MadeLink, make_active_link, set_status
from support.ledger import institution_headers
from support.quota import MEMBER_REGION, quota_balance, quota_family, top_up
from support.resident import API, assert_reconciled, balance_of, pay

PASSWORD = {"method": "payment_password", "payment_password": PAYMENT_PASSWORD}


def later(rt: Runtime) -> None:
    """A second on, so the quota's movements list in the order they happened."""
    assert isinstance(rt.clock, FrozenClock)
    rt.clock.advance(timedelta(seconds=1))


def _authorize(
    client: TestClient, headers: dict[str, str], made: MadeLink, amount: int, ref: str
) -> Response:
    return client.post(
        f"{API}/payments/authorize",
        headers=headers,
        json={
            "holder_id_number": made.holder.id_number,
            "member_id_number": made.member.id_number,
            "amount_fen": amount,
            "reference": ref,
        },
    )


def test_binding_beyond_the_scope_makes_a_quota_link(rt: Runtime, client: TestClient) -> None:
    made = quota_family(rt, client)
    assert made.link["via_quota"] is True
    near = make_active_link(rt, client, relation="spouse")
    assert near.link["via_quota"] is False
    # The member sees the link's quota too (empty so far).
    got = client.get(f"{API}/family/links/{made.link_id}/quota", headers=made.member_headers)
    assert got.status_code == 200, got.text
    assert got.json() == {
        "link_id": made.link_id,
        "balance_fen": 0,
        "held_fen": 0,
        "available_fen": 0,
        "entries": [],
    }


def test_a_top_up_locks_the_holders_money_for_the_member(rt: Runtime, client: TestClient) -> None:
    made = quota_family(rt, client)
    r = top_up(client, made, 30_000)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["balance_fen"], body["held_fen"], body["available_fen"]) == (30_000, 0, 30_000)
    assert [(e["kind"], e["amount_fen"]) for e in body["entries"]] == [("top_up", 30_000)]
    # The holder's own balance dropped: the money is no longer theirs to spend.
    assert balance_of(rt, made) == 70_000
    me = client.get(f"{API}/me", headers=made.holder_headers).json()
    assert me["balance_fen"] == 70_000
    # The statement shows the move and the quota set aside, with the member's name.
    st = client.get(f"{API}/me/account/entries", headers=made.holder_headers).json()
    line = st["entries"][0]
    assert (line["kind"], line["amount_fen"]) == ("quota_top_up", -30_000)
    assert line["member"]["name"] == made.member.name
    assert line["link_id"] == made.link_id
    assert [(q["link_id"], q["available_fen"]) for q in st["quotas"]] == [(made.link_id, 30_000)]
    for headers in (made.holder_headers, made.member_headers):
        seen = client.get(f"{API}/family/links/{made.link_id}/quota", headers=headers).json()
        assert seen["available_fen"] == 30_000
    with rt.db.unit_of_work() as s:
        kinds = {
            (n.person_id, n.kind)
            for n in s.execute(
                select(Notification).where(Notification.kind.like("quota.%"))
            ).scalars()
        }
        audited = s.execute(
            select(AuditEntry.action).where(AuditEntry.action == "quota.topped_up")
        ).all()
    assert kinds == {
        (made.holder_id, "quota.topped_up"),
        (made.member_id, "quota.topped_up_for_you"),
    }
    assert len(audited) == 1
    assert_reconciled(rt)


def test_a_retried_top_up_moves_money_once(rt: Runtime, client: TestClient) -> None:
    made = quota_family(rt, client)
    first = top_up(client, made, 10_000, key="q-1")
    again = top_up(client, made, 10_000, key="q-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert quota_balance(rt, made) == (10_000, 0)
    assert balance_of(rt, made) == 90_000


def test_top_up_refusals_change_nothing(rt: Runtime, client: TestClient) -> None:
    made = quota_family(rt, client)
    cases = [
        (top_up(client, made, 10_000, headers=made.member_headers), 403, "QUOTA_HOLDER_ONLY"),
        (top_up(client, made, 100_001), 409, "INSUFFICIENT_BALANCE"),
        (top_up(client, made, 10_000, password="000000"), 403, "VERIFICATION_FAILED"),
        (top_up(client, made, 10_000, password=None), 409, "VERIFICATION_REQUIRED"),
        (top_up(client, made, 0), 422, None),
    ]
    for r, status, code in cases:
        assert r.status_code == status, r.text
        if code is not None:
            assert r.json()["code"] == code
    assert quota_balance(rt, made) == (0, 0)
    assert balance_of(rt, made) == 100_000
    # A link within the scope has no quota.
    near = make_active_link(rt, client, relation="spouse")
    r = client.post(
        f"{API}/family/links/{near.link_id}/quota",
        headers=near.holder_headers,
        json={"amount_fen": 100, "verification": PASSWORD},
    )
    assert (r.status_code, r.json()["code"]) == (409, "QUOTA_NOT_CROSS_REGION")
    got = client.get(f"{API}/family/links/{near.link_id}/quota", headers=near.holder_headers)
    assert (got.status_code, got.json()["code"]) == (409, "QUOTA_NOT_CROSS_REGION")
    # A stranger cannot see the quota: the unknown link's answer.
    stranger = make_active_link(rt, client, relation="spouse")
    got = client.get(f"{API}/family/links/{made.link_id}/quota", headers=stranger.holder_headers)
    assert got.status_code == 404
    # A holder whose insurance is not in force moves nothing.
    set_status(rt, made.holder_id, "suspended")
    r = top_up(client, made, 10_000)
    assert (r.status_code, r.json()["code"]) == (409, "PAYER_NOT_ACTIVE")
    assert balance_of(rt, made) == 100_000


def test_the_members_payments_draw_only_on_the_quota(rt: Runtime, client: TestClient) -> None:
    made = quota_family(rt, client)
    assert top_up(client, made, 30_000).status_code == 201
    inst = institution_headers(rt, client, region=MEMBER_REGION)
    later(rt)
    a = _authorize(client, inst, made, 20_000, "hosp-1")
    assert a.status_code == 201, a.text
    assert quota_balance(rt, made) == (30_000, 20_000)
    s = client.post(
        f"{API}/payments/{a.json()['payment_id']}/settle", headers=inst, json={"amount_fen": 18_000}
    )
    assert s.status_code == 200, s.text
    # From the quota; the holder's own balance is untouched.
    assert quota_balance(rt, made) == (12_000, 0)
    assert balance_of(rt, made) == 70_000
    # More than the quota holds is refused, though the holder's balance would cover it
    # (by bare ID numbers an institution is told only that mutual aid is unavailable).
    over = _authorize(client, inst, made, 12_001, "hosp-2")
    assert over.status_code == 409, over.text
    assert over.json()["code"] == "MUTUAL_AID_UNAVAILABLE"
    with rt.db.unit_of_work() as s2:
        real = (
            s2.execute(
                select(AuditEntry.details).where(AuditEntry.action == "payment.authorize_refused")
            )
            .scalars()
            .all()
        )
    assert any(d.get("code") == "QUOTA_INSUFFICIENT" for d in real), real
    entries = client.get(
        f"{API}/family/links/{made.link_id}/quota", headers=made.member_headers
    ).json()["entries"]
    assert [(e["kind"], e["amount_fen"]) for e in entries] == [
        ("payment", -18_000),
        ("top_up", 30_000),
    ]
    assert_reconciled(rt)


def test_a_resident_contribution_draws_on_the_quota(rt: Runtime, client: TestClient) -> None:
    made = quota_family(rt, client)
    short = pay(client, made)
    assert (short.status_code, short.json()["code"]) == (409, "QUOTA_INSUFFICIENT")
    assert balance_of(rt, made) == 100_000
    assert top_up(client, made, 50_000).status_code == 201
    r = pay(client, made)
    assert r.status_code == 201, r.text
    paid = r.json()["amount_fen"]
    assert quota_balance(rt, made) == (50_000 - paid, 0)
    assert balance_of(rt, made) == 50_000
    assert_reconciled(rt)


def test_the_unused_quota_returns_when_the_link_ends(rt: Runtime, client: TestClient) -> None:
    made = quota_family(rt, client)
    assert top_up(client, made, 30_000).status_code == 201
    inst = institution_headers(rt, client, region=MEMBER_REGION)
    later(rt)
    a = _authorize(client, inst, made, 5_000, "hosp-1")
    assert a.status_code == 201, a.text
    # An open hold on the quota blocks the unbind.
    r = client.post(
        f"{API}/family/links/{made.link_id}/unbind",
        headers=made.holder_headers,
        json={"verification": PASSWORD},
    )
    assert r.status_code == 409, r.text
    assert "UNSETTLED_PAYMENTS" in [b["code"] for b in r.json()["blockers"]]
    assert (
        client.post(
            f"{API}/payments/{a.json()['payment_id']}/settle",
            headers=inst,
            json={"amount_fen": 5_000},
        ).status_code
        == 200
    )
    later(rt)
    r = client.post(
        f"{API}/family/links/{made.link_id}/unbind",
        headers=made.holder_headers,
        json={"verification": PASSWORD},
    )
    assert r.status_code == 200, r.text
    # The 25,000 left came back in the same transaction.
    assert quota_balance(rt, made) == (0, 0)
    assert balance_of(rt, made) == 95_000
    got = client.get(f"{API}/family/links/{made.link_id}/quota", headers=made.holder_headers)
    newest = got.json()["entries"][0]
    assert (newest["kind"], newest["amount_fen"]) == ("refund", -25_000)
    with rt.db.unit_of_work() as s:
        returned = s.execute(
            select(Notification.payload).where(
                Notification.person_id == made.holder_id, Notification.kind == "quota.returned"
            )
        ).scalar_one()
    assert returned["amount_fen"] == 25_000
    # An ended link takes no more money.
    r = top_up(client, made, 1_000)
    assert (r.status_code, r.json()["code"]) == (409, "NO_MUTUAL_AID_LINK")
    assert_reconciled(rt)


def test_ids_in_the_quota_answer_name_no_one(rt: Runtime, client: TestClient) -> None:
    made = quota_family(rt, client)
    body = top_up(client, made, 1_000).json()
    text = str(body)
    assert made.holder.id_number not in text and made.member.id_number not in text
    assert uuid.UUID(body["entries"][0]["id"])


def test_the_e_voucher_tells_the_hospital_what_the_quota_can_pay(
    rt: Runtime, client: TestClient
) -> None:
    """By the member's voucher a hospital in the member's region sees the quota, not the
    holder's balance, and is told QUOTA_INSUFFICIENT (it was shown the voucher)."""
    rt.settings.client_token_ttl_seconds = 30 * 24 * 3600
    made = quota_family(rt, client)
    assert top_up(client, made, 12_000).status_code == 201
    inst = institution_headers(rt, client, region=MEMBER_REGION)
    r = client.post(f"{API}/vouchers", json={"link_id": made.link_id}, headers=made.holder_headers)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    seen = client.post(f"{API}/vouchers/redeem", json={"token": token}, headers=inst).json()
    aid = seen["mutual_aid"]
    assert (aid["via_quota"], aid["payable_fen"], aid["blocked_by"]) == (True, 12_000, None)
    over = client.post(
        f"{API}/payments/authorize",
        json={"voucher_token": token, "amount_fen": 12_001, "reference": "v-1"},
        headers=inst,
    )
    assert (over.status_code, over.json()["code"]) == (409, "QUOTA_INSUFFICIENT")
    ok = client.post(
        f"{API}/payments/authorize",
        json={"voucher_token": token, "amount_fen": 12_000, "reference": "v-2"},
        headers=inst,
    )
    assert ok.status_code == 201, ok.text
    # A fresh voucher (one is used up by its payment) now shows nothing payable.
    token = client.post(
        f"{API}/vouchers", json={"link_id": made.link_id}, headers=made.holder_headers
    ).json()["token"]
    aid = client.post(f"{API}/vouchers/redeem", json={"token": token}, headers=inst).json()[
        "mutual_aid"
    ]
    assert (aid["payable_fen"], aid["blocked_by"]) == (0, "QUOTA_INSUFFICIENT")
    assert balance_of(rt, made) == 88_000
