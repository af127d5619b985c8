"""Registration, login, logout, tokens: SPEC §5 auth rows, on both databases."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from qinqing.auth.verification import simulated_face_token
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.accounts import (
    PASSWORD,
    STAFF_PASSWORD,
    add_client,
    add_person,
    add_staff,
    login,
    register,
)
from support.client import AppClient

API = "/api/v1"


def test_knowing_id_number_and_name_is_not_enough(rt: Runtime, client: TestClient) -> None:
    person, number = add_person(rt, name="王芳")
    body = {"id_number": number, "name": "王芳", "phone": "13800138000", "password": PASSWORD}
    r = client.post(f"{API}/auth/register", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "REGISTRATION_PROOF_REQUIRED"
    r = client.post(f"{API}/auth/register", json={**body, "sms_code": "000000"})
    assert r.status_code == 422 and r.json()["code"] == "SMS_CODE_INVALID"
    assert number not in r.text
    r = client.post(f"{API}/auth/login", json={"login": "13800138000", "password": PASSWORD})
    assert r.status_code == 401

    register(client, number, "王芳", "13800138000")
    # One account per person.
    face = {**body, "phone": "13900139000", "face_token": simulated_face_token(person.id)}
    r = client.post(f"{API}/auth/register", json=face)
    assert r.status_code == 409 and r.json()["code"] == "ACCOUNT_EXISTS"


def test_register_refuses_invalid_id_number_with_its_reason(
    rt: Runtime, client: TestClient
) -> None:
    _, number = add_person(rt)
    bad = number[:-1] + ("0" if number[-1] != "0" else "1")
    r = client.post(
        f"{API}/auth/register",
        json={"id_number": bad, "name": "张三", "phone": "13800138000", "password": PASSWORD},
    )
    assert r.status_code == 422 and r.json()["code"] == "ID_NUMBER_CHECK_DIGIT"


def test_register_refuses_weak_password(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt)
    r = client.post(
        f"{API}/auth/register",
        json={"id_number": number, "name": "张三", "phone": "13800138000", "password": "short"},
    )
    assert r.status_code == 422 and r.json()["code"] == "WEAK_PASSWORD"


def test_login_me_logout(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt, name="李四", phone="13600136000")
    register(client, number, "李四", "13600136000")
    headers = login(client, "13600136000")
    me = client.get(f"{API}/me", headers=headers)
    assert me.status_code == 200
    body = me.json()
    assert body["name"] == "李四"
    assert body["id_number"] == number[:6] + "********" + number[-4:]
    assert body["phone"] == "136****6000"
    assert body["region"] == {"code": "150600", "name": "鄂尔多斯市"}
    assert body["payment_password_set"] is False

    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 204
    r = client.get(f"{API}/me", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"


def test_token_expires(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _, number = add_person(rt)
    register(client, number, "张三", "13800138000")
    headers = login(client, "13800138000")
    clock.advance(timedelta(seconds=rt.settings.access_token_ttl_seconds - 1))
    assert client.get(f"{API}/me", headers=headers).status_code == 200
    clock.advance(timedelta(seconds=2))
    assert client.get(f"{API}/me", headers=headers).status_code == 401


def test_login_does_not_reveal_whether_account_exists(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt)
    register(client, number, "张三", "13800138000")
    wrong = client.post(f"{API}/auth/login", json={"login": "13800138000", "password": "Wrong123x"})
    nobody = client.post(
        f"{API}/auth/login", json={"login": "13911112222", "password": "Wrong123x"}
    )
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()


def test_login_lockout_per_account_survives_restart(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    from qinqing.entrypoints.app import create_app
    from qinqing.entrypoints.bootstrap import build_runtime

    _, number = add_person(rt)
    register(client, number, "张三", "13800138000")
    for _ in range(rt.settings.login_max_failures):
        r = client.post(f"{API}/auth/login", json={"login": "13800138000", "password": "Wrong123x"})
        assert r.status_code == 401
    # A "restart": a new runtime and app over the same database.
    rt2 = build_runtime(rt.settings, clock=clock, migrate=False)
    with AppClient(create_app(rt2)) as c2:
        r = c2.post(f"{API}/auth/login", json={"login": "13800138000", "password": PASSWORD})
        assert r.status_code == 429 and r.json()["code"] == "LOGIN_LOCKED"
        assert int(r.headers["Retry-After"]) > 0
        # An unknown login gets the same lock after the same number of failures.
        for _ in range(rt.settings.login_max_failures):
            c2.post(f"{API}/auth/login", json={"login": "13911112222", "password": "Wrong123x"})
        assert (
            c2.post(
                f"{API}/auth/login", json={"login": "13911112222", "password": "Wrong123x"}
            ).status_code
            == 429
        )
        # A short, growing delay, not a long lock: one second after the fifth failure.
        clock.advance(timedelta(seconds=1))
        assert (
            c2.post(
                f"{API}/auth/login", json={"login": "13800138000", "password": PASSWORD}
            ).status_code
            == 200
        )
    rt2.db.dispose()


def test_login_is_throttled_per_source_address(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt)
    register(client, number, "张三", "13800138000")
    limit = rt.settings.login_max_failures_per_address
    for i in range(limit):
        client.post(f"{API}/auth/login", json={"login": f"139{i:08d}", "password": "Wrong123x"})
    r = client.post(f"{API}/auth/login", json={"login": "13800138000", "password": PASSWORD})
    assert r.status_code == 429


def test_staff_login_and_role(rt: Runtime, client: TestClient) -> None:
    add_staff(rt, "clerk.one", "clerk")
    r = client.post(f"{API}/auth/login", json={"login": "clerk.one", "password": STAFF_PASSWORD})
    assert r.status_code == 200
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    # Staff are not persons: /me is a person's profile.
    assert client.get(f"{API}/me", headers=headers).status_code == 403


def test_client_credentials(rt: Runtime, client: TestClient) -> None:
    cid, secret = add_client(rt, "institution")
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "payments" and r.json()["token_type"] == "bearer"
    bad = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": "nope"},
    )
    assert bad.status_code == 401 and bad.json()["code"] == "INVALID_CLIENT"
    grant = client.post(
        f"{API}/auth/token",
        data={"grant_type": "password", "client_id": cid, "client_secret": secret},
    )
    assert grant.status_code == 400 and grant.json()["code"] == "UNSUPPORTED_GRANT_TYPE"
    scope = client.post(
        f"{API}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": cid,
            "client_secret": secret,
            "scope": "contributions",
        },
    )
    assert scope.status_code == 400 and scope.json()["code"] == "INVALID_SCOPE"


def test_password_rehashed_when_parameters_change(rt: Runtime, client: TestClient) -> None:
    from sqlalchemy import select

    from qinqing.auth import service
    from qinqing.auth.models import PersonAccount

    _, number = add_person(rt)
    register(client, number, "张三", "13800138000")
    with rt.db.unit_of_work() as s:
        old = s.execute(select(PersonAccount.password_hash)).scalar_one()
    rt.settings.argon2_time_cost = 2
    rt._passwords = None  # type: ignore[attr-defined]
    assert service.passwords(rt).needs_rehash(old)
    login(client, "13800138000")
    with rt.db.unit_of_work() as s:
        new = s.execute(select(PersonAccount.password_hash)).scalar_one()
    assert new != old and "t=2" in new
