"""The bank channel for family accounts is customer-bound (both databases): a bank
client acts only for persons with an active bank link to its bank."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support.banks import API, add_bank, card_number, link_customer
from support.family import PAYMENT_PASSWORD, make_active_link

WRONG = {"method": "payment_password", "payment_password": "246801"}
RIGHT = {"method": "payment_password", "payment_password": PAYMENT_PASSWORD}


def test_a_bank_sees_its_customers_family_and_unbinds_for_them(
    rt: Runtime, client: TestClient
) -> None:
    bank, _ = add_bank(rt, client, "BANKA")
    other, _ = add_bank(rt, client, "BANKB")
    made = make_active_link(rt, client, relation="spouse")
    holder = made.holder
    bl = link_customer(client, bank, holder.id_number, holder.name, card_number(1)).json()

    fam = client.get(f"{API}/bank-links/{bl['id']}/family", headers=bank.headers)
    assert fam.status_code == 200, fam.text
    out = fam.json()
    assert [link["id"] for link in out["as_holder"]] == [made.link_id] and out["as_member"] == []
    assert holder.id_number not in fam.text and made.member.id_number not in fam.text
    assert (
        client.get(f"{API}/bank-links/{bl['id']}/family", headers=other.headers).status_code == 404
    )

    r = client.get(
        f"{API}/family/links/{made.link_id}/unbind-check",
        headers=bank.headers,
        params={"customer": "holder"},
    )
    assert r.status_code == 200 and r.json()["eligible"] is True
    for who in ("member",):
        r = client.get(
            f"{API}/family/links/{made.link_id}/unbind-check",
            headers=bank.headers,
            params={"customer": who},
        )
        assert r.status_code == 404  # the member banks elsewhere
    url = f"{API}/family/links/{made.link_id}/unbind"
    # The member is a party but not this bank's customer: as unknown.
    r = client.post(
        url,
        headers=bank.headers,
        json={"verification": RIGHT, "customer_id_number": made.member.id_number},
    )
    assert r.status_code == 404
    # Bank B has no customer on this link.
    r = client.post(
        url,
        headers=other.headers,
        json={"verification": RIGHT, "customer_id_number": holder.id_number},
    )
    assert r.status_code == 404
    # The customer's own payment password decides; a wrong one is counted.
    r = client.post(
        url,
        headers=bank.headers,
        json={"verification": WRONG, "customer_id_number": holder.id_number},
    )
    assert r.status_code == 409
    assert [b["code"] for b in r.json()["blockers"]] == ["VERIFICATION_FAILED"]
    r = client.post(
        url,
        headers=bank.headers,
        json={"verification": RIGHT, "customer_id_number": holder.id_number},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request"]["status"] == "completed"
    assert body["link"]["ended_channel"] == "bank" and body["link"]["ended_by_kind"] == "client"
    req = client.get(f"{API}/unbind-requests/{body['request']['id']}", headers=bank.headers)
    assert req.status_code == 200 and req.json()["channel"] == "bank"
    assert (
        client.get(
            f"{API}/unbind-requests/{body['request']['id']}", headers=other.headers
        ).status_code
        == 404
    )


def test_unlinking_the_account_ends_the_banks_reach(rt: Runtime, client: TestClient) -> None:
    bank, _ = add_bank(rt, client, "BANKA")
    made = make_active_link(rt, client, relation="spouse")
    bl = link_customer(client, bank, made.member.id_number, made.member.name, card_number(2)).json()
    check = f"{API}/family/links/{made.link_id}/unbind-check"
    assert client.get(check, headers=bank.headers, params={"customer": "member"}).status_code == 200
    # The person unlinks in the app; from then on the bank gets 404 everywhere.
    mine = client.get(f"{API}/bank-links", headers=made.member.headers).json()["items"]
    assert [i["id"] for i in mine] == [bl["id"]]
    assert (
        client.delete(f"{API}/bank-links/{bl['id']}", headers=made.member.headers).status_code
        == 200
    )
    assert client.get(check, headers=bank.headers, params={"customer": "member"}).status_code == 404
    assert (
        client.get(f"{API}/bank-links/{bl['id']}/family", headers=bank.headers).status_code == 404
    )
    r = client.post(
        f"{API}/family/links/{made.link_id}/unbind",
        headers=bank.headers,
        json={"verification": RIGHT, "customer_id_number": made.member.id_number},
    )
    assert r.status_code == 404
    # The ended association is still listed for the bank, with who ended it.
    ended = client.get(f"{API}/bank-links", headers=bank.headers).json()["items"][0]
    assert ended["status"] == "ended" and ended["ended_by_kind"] == "person"


def test_only_a_bank_may_read_a_customers_family(rt: Runtime, client: TestClient) -> None:
    from support.accounts import add_client
    from support.banks import client_headers

    bank, _ = add_bank(rt, client, "BANKA")
    made = make_active_link(rt, client)
    bl = link_customer(client, bank, made.holder.id_number, made.holder.name, card_number(3)).json()
    url = f"{API}/bank-links/{bl['id']}/family"
    assert client.get(url, headers=made.holder.headers).status_code == 403
    institution = client_headers(client, *add_client(rt, "institution", "150600"))
    r = client.get(url, headers=institution)
    assert r.status_code == 403 and r.json()["code"] == "INSUFFICIENT_SCOPE"
    assert client.get(url).status_code == 401


def test_a_non_customer_gets_exactly_the_unknown_id_answer(rt: Runtime, client: TestClient) -> None:
    import uuid

    bank, _ = add_bank(rt, client, "BANKA")
    made = make_active_link(rt, client)
    unknown = str(uuid.uuid4())
    for path, params in (
        ("/family/links/{}/unbind-check", {"customer": "holder"}),
        ("/family/links/{}/unbind-check", {"customer": "member"}),
    ):
        real = client.get(API + path.format(made.link_id), headers=bank.headers, params=params)
        fake = client.get(API + path.format(unknown), headers=bank.headers, params=params)
        assert real.status_code == fake.status_code == 404
        assert real.text == fake.text
    body = {"verification": RIGHT, "customer_id_number": made.holder.id_number}
    real = client.post(f"{API}/family/links/{made.link_id}/unbind", headers=bank.headers, json=body)
    fake = client.post(f"{API}/family/links/{unknown}/unbind", headers=bank.headers, json=body)
    assert real.status_code == fake.status_code == 404 and real.text == fake.text
