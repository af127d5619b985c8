"""A person's sessions: listed with the current one marked, all ended at once (after a
lost phone), a notice when someone logs in while another session is live, and a
password change that ends every other session (both databases)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.accounts import PASSWORD, login, person_with_account

API = "/api/v1"


def _notices(client: TestClient, headers: dict[str, str]) -> list[str]:
    r = client.get(f"{API}/me/notifications", headers=headers)
    assert r.status_code == 200, r.text
    return [n["kind"] for n in r.json()["items"]]


def test_sessions_are_listed_and_the_current_one_marked(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _, _, phone_app = person_with_account(rt, client, phone="13800138000")
    clock.advance(timedelta(minutes=1))
    web = login(client, "13800138000")
    body = client.get(f"{API}/me/sessions", headers=web).json()
    assert len(body["items"]) == 2
    newest, older = body["items"]
    assert newest["current"] is True and older["current"] is False
    assert newest["created_at"] > older["created_at"]
    assert {"id", "created_at", "last_seen_at", "channel", "current"} <= set(newest)
    # No token, nor its digest in full, is ever shown.
    token = web["Authorization"].removeprefix("Bearer ")
    assert token not in str(body) and len(newest["id"]) == 16
    # The other session's "last used" moves when it is used (to a few minutes).
    clock.advance(timedelta(minutes=10))
    client.get(f"{API}/me", headers=phone_app)
    again = client.get(f"{API}/me/sessions", headers=web).json()["items"]
    seen = next(s for s in again if not s["current"])["last_seen_at"]
    assert seen is not None and seen > older["created_at"]


def test_ending_all_sessions_logs_every_device_out(rt: Runtime, client: TestClient) -> None:
    _, _, first = person_with_account(rt, client, phone="13800138000")
    second = login(client, "13800138000")
    assert client.delete(f"{API}/me/sessions", headers=second).status_code == 204
    for headers in (first, second):
        assert client.get(f"{API}/me", headers=headers).status_code == 401
    # A fresh login works, and has only itself.
    fresh = login(client, "13800138000")
    assert len(client.get(f"{API}/me/sessions", headers=fresh).json()["items"]) == 1


def test_a_login_while_another_session_is_live_is_told(rt: Runtime, client: TestClient) -> None:
    _, _, first = person_with_account(rt, client, phone="13800138000")
    assert "account.new_login" not in _notices(client, first)
    login(client, "13800138000")
    assert _notices(client, first).count("account.new_login") == 1


def test_a_password_change_ends_the_other_sessions(rt: Runtime, client: TestClient) -> None:
    _, _, phone_app = person_with_account(rt, client, phone="13800138000")
    web = login(client, "13800138000")
    r = client.put(
        f"{API}/me/password",
        headers=web,
        json={"password": "Wrong-pass-9", "new_password": "Newpass2026x"},
    )
    assert r.status_code == 401
    same = client.put(
        f"{API}/me/password", headers=web, json={"password": PASSWORD, "new_password": PASSWORD}
    )
    assert same.status_code == 422 and same.json()["code"] == "PASSWORD_UNCHANGED"
    weak = client.put(
        f"{API}/me/password", headers=web, json={"password": PASSWORD, "new_password": "short"}
    )
    assert weak.status_code == 422 and weak.json()["code"] == "WEAK_PASSWORD"
    ok = client.put(
        f"{API}/me/password",
        headers=web,
        json={"password": PASSWORD, "new_password": "Newpass2026x"},
    )
    assert ok.status_code == 204, ok.text
    assert client.get(f"{API}/me", headers=phone_app).status_code == 401
    assert client.get(f"{API}/me", headers=web).status_code == 200
    assert "account.password_changed" in _notices(client, web)
    login(client, "13800138000", "Newpass2026x")
    r = client.post(f"{API}/auth/login", json={"login": "13800138000", "password": PASSWORD})
    assert r.status_code == 401
