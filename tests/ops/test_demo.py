"""`serve --demo` data: realistic, loadable twice, and its printed logins work."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qinqing.entrypoints import demo
from qinqing.runtime import Runtime

API = "/api/v1"


def test_demo_loads_once_and_its_logins_work(rt: Runtime, client: TestClient) -> None:
    assert demo.load(rt) is True
    assert demo.load(rt) is False
    rows = demo.logins()
    person = next(r for r in rows if "employee" in r[0])
    r = client.post(f"{API}/auth/login", json={"login": person[1], "password": person[2]})
    assert r.status_code == 200
    me = client.get(f"{API}/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["payment_password_set"] is True
    for who, login, secret, _ in rows:
        if who.startswith("staff"):
            assert (
                client.post(
                    f"{API}/auth/login", json={"login": login, "password": secret}
                ).status_code
                == 200
            )
        if who.startswith("client"):
            r = client.post(
                f"{API}/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": login,
                    "client_secret": secret,
                },
            )
            assert r.status_code == 200, who


def test_demo_accounts_are_funded_and_one_link_shows_an_open_hold(
    rt: Runtime, client: TestClient
) -> None:
    demo.load(rt)
    r = client.post(
        f"{API}/auth/login", json={"login": "13800000001", "password": demo.PERSON_PASSWORD}
    )
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    me = client.get(f"{API}/me", headers=headers).json()
    assert me["balance_fen"] > 0
    assert me["balance_fen"] - me["available_fen"] == demo.DEMO_HOLD_FEN
    spouse = next(
        link
        for link in client.get(f"{API}/me/family", headers=headers).json()["as_holder"]
        if link["relation"] == "spouse"
    )
    check = client.get(f"{API}/family/links/{spouse['id']}/unbind-check", headers=headers).json()
    assert check["eligible"] is False
    assert [b["code"] for b in check["blockers"]] == ["UNSETTLED_PAYMENTS"]


def test_demo_has_a_cross_region_family_with_a_quota(rt: Runtime, client: TestClient) -> None:
    """李娜 (鄂尔多斯) and her mother 黄桂兰 (广州): mutual aid through a 共济额度, from
    which next year's resident insurance was paid (the test clock is in the window)."""
    demo.load(rt)
    r = client.post(
        f"{API}/auth/login", json={"login": "13800000002", "password": demo.PERSON_PASSWORD}
    )
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    mother = next(
        link
        for link in client.get(f"{API}/me/family", headers=headers).json()["as_holder"]
        if link["relation"] == "mother"
    )
    assert mother["via_quota"] is True and mother["status"] == "active"
    got = client.get(f"{API}/family/links/{mother['id']}/quota", headers=headers).json()
    # (In one instant here: the test clock does not move while the demo loads.)
    moves = {e["kind"]: e["amount_fen"] for e in got["entries"]}
    assert set(moves) == {"resident_contribution", "top_up"}, moves
    assert moves["top_up"] == demo.DEMO_QUOTA_FEN
    paid = -moves["resident_contribution"]
    assert got["balance_fen"] == demo.DEMO_QUOTA_FEN - paid > 0
    st = client.get(f"{API}/me/account/entries", headers=headers).json()
    assert [q["member"]["name"] for q in st["quotas"]] == ["黄桂兰"]
