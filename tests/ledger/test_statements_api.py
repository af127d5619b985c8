"""What a person sees of money: GET /me balances, the personal-account statement
and a link's payments this year (its parties only)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.family import API, make_active_link, new_person
from support.ledger import fund, institution_headers


def test_statement_balances_holds_and_paging(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    made = make_active_link(rt, client, relation="spouse", yearly_limit_fen=80_000)
    rt.settings.client_token_ttl_seconds = 30 * 24 * 3600
    inst = institution_headers(rt, client)
    for _ in range(3):
        fund(rt, made.holder_id, 20_000)
        clock.advance(timedelta(seconds=1))
    body = {"holder_id_number": made.holder.id_number, "member_id_number": made.member.id_number}
    p1 = client.post(
        f"{API}/payments/authorize",
        headers=inst,
        json={**body, "amount_fen": 15_000, "reference": "S1"},
    ).json()
    client.post(
        f"{API}/payments/{p1['payment_id']}/settle", headers=inst, json={"amount_fen": 12_345}
    )
    clock.advance(timedelta(seconds=1))
    p2 = client.post(
        f"{API}/payments/authorize",
        headers=inst,
        json={**body, "amount_fen": 5_000, "reference": "S2"},
    ).json()

    me = client.get(f"{API}/me", headers=made.holder_headers).json()
    assert me["has_personal_account"] is True
    assert (me["balance_fen"], me["available_fen"]) == (60_000 - 12_345, 60_000 - 12_345 - 5_000)

    page = client.get(f"{API}/me/account/entries?limit=2", headers=made.holder_headers).json()
    assert page["held_fen"] == 5_000 and [h["payment_id"] for h in page["holds"]] == [
        p2["payment_id"]
    ]
    assert page["holds"][0]["member"]["name"] == made.member.name
    first = page["entries"]
    assert [e["kind"] for e in first] == ["payment", "contribution"]
    assert first[0]["amount_fen"] == -12_345 and first[0]["member"]["id"] == str(made.member_id)
    assert first[1]["amount_fen"] == 20_000 and first[0]["payment_id"] == p1["payment_id"]
    rest = client.get(
        f"{API}/me/account/entries?limit=2&before={page['next_before']}",
        headers=made.holder_headers,
    ).json()
    assert [e["amount_fen"] for e in rest["entries"]] == [20_000, 20_000]
    assert rest["next_before"] is None
    bad = client.get(f"{API}/me/account/entries?before=nope", headers=made.holder_headers)
    assert bad.status_code == 422 and bad.json()["code"] == "CURSOR_INVALID"

    # The link's payments this year and the yearly limit used, for both parties.
    for headers in (made.holder_headers, made.member_headers):
        lp = client.get(f"{API}/family/links/{made.link_id}/payments", headers=headers).json()
        assert lp["yearly_limit_fen"] == 80_000
        assert lp["used_fen"] == 12_345 + 5_000 and lp["remaining_fen"] == 80_000 - 17_345
        assert [p["status"] for p in lp["payments"]] == ["authorized", "settled"]
    # An expired hold no longer counts anywhere, even before anything releases it.
    clock.advance(timedelta(hours=rt.policies.policy("150600").hold_expiry_hours, seconds=1))
    from support.family import relogin

    holder_headers = relogin(client, made.holder)
    me = client.get(f"{API}/me", headers=holder_headers).json()
    assert me["available_fen"] == me["balance_fen"] == 60_000 - 12_345
    lp = client.get(f"{API}/family/links/{made.link_id}/payments", headers=holder_headers).json()
    assert lp["used_fen"] == 12_345


def test_link_payments_are_for_its_parties_only(rt: Runtime, client: TestClient) -> None:
    made = make_active_link(rt, client)
    stranger = new_person(rt, client=client)
    r = client.get(f"{API}/family/links/{made.link_id}/payments", headers=stranger.headers)
    assert r.status_code == 404
    r = client.get(
        f"{API}/family/links/{made.link_id}/payments", headers=institution_headers(rt, client)
    )
    assert r.status_code == 403


def test_non_employee_has_no_personal_account(rt: Runtime, client: TestClient) -> None:
    person = new_person(rt, scheme="resident", client=client)
    me = client.get(f"{API}/me", headers=person.headers).json()
    assert me["has_personal_account"] is False and me["balance_fen"] == 0
    st = client.get(f"{API}/me/account/entries", headers=person.headers).json()
    assert st["entries"] == [] and st["holds"] == []
