"""Login hardening, on both databases: the same hash work whether or not an account
exists, no hashing inside the write lock, throttling that trusts only configured
proxies and slows an account down without locking its owner out, and HTTP Basic
client authentication."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from qinqing.auth.models import StaffUser
from qinqing.entrypoints import serve
from qinqing.entrypoints.app import create_app
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.accounts import (
    OPERATOR,
    PASSWORD,
    STAFF_PASSWORD,
    add_client,
    add_person,
    add_staff,
    login,
    person_with_account,
    register,
)
from support.client import AppClient

API = "/api/v1"
WRONG = "Wrong123x"


def _login(client: TestClient, who: str, password: str = WRONG, **kw: Any) -> Any:
    return client.post(f"{API}/auth/login", json={"login": who, "password": password}, **kw)


def _token(client: TestClient, cid: str, secret: str) -> Any:
    return client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every argon2 verification made while the test runs (its stored hash)."""
    seen: list[str] = []
    real = PasswordHasher.verify

    def spy(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        seen.append(str(hash))
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    yield seen


def test_unknown_logins_cost_the_same_hash_work(
    rt: Runtime, client: TestClient, verifications: list[str]
) -> None:
    person_with_account(rt, client, phone="13800138000")
    add_staff(rt, "clerk.one", "clerk")
    add_staff(rt, "clerk.gone", "clerk")
    with rt.db.unit_of_work() as s:
        s.query(StaffUser).filter(StaffUser.username == "clerk.gone").update({"disabled": True})
    cid, _ = add_client(rt, "institution")

    def count(call: Callable[[], Any], status: int) -> int:
        verifications.clear()
        assert call().status_code == status
        return len(verifications)

    # Each path makes exactly one argon2 verification, known or not.
    assert count(lambda: _login(client, "13800138000"), 401) == 1
    assert count(lambda: _login(client, "13911112222"), 401) == 1
    assert count(lambda: _login(client, "clerk.one"), 401) == 1
    assert count(lambda: _login(client, "no.such.clerk"), 401) == 1
    assert count(lambda: _login(client, "clerk.gone", STAFF_PASSWORD), 401) == 1
    assert count(lambda: _token(client, cid, "nope"), 401) == 1
    assert count(lambda: _token(client, "qq_no_such_client", "nope"), 401) == 1
    assert count(lambda: _token(client, "x" * 50, "nope"), 401) == 1


def test_no_hash_runs_while_the_write_lock_is_held(
    rt: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While argon2 works, no connection of ours is out of the pool, and on SQLite
    another connection can take the write lock (BEGIN IMMEDIATE) at once."""
    _, number = add_person(rt, name="王芳", phone="13600136000")
    cid, secret = add_client(rt, "institution")
    checks: list[tuple[str, int, bool]] = []
    path = rt.settings.resolved_database_url.split("sqlite:///", 1)[-1]

    def writer_can_lock() -> bool:
        if not rt.db.is_sqlite:
            return True
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            other.close()

    def watch(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def spy(self: PasswordHasher, *args: Any) -> Any:
            checks.append((name, rt.db.engine.pool.checkedout(), writer_can_lock()))  # type: ignore[attr-defined]
            return real(self, *args)

        return spy

    monkeypatch.setattr(PasswordHasher, "verify", watch("verify", PasswordHasher.verify))
    monkeypatch.setattr(PasswordHasher, "hash", watch("hash", PasswordHasher.hash))

    register(client, number, "王芳", "13600136000")  # hashes the new password
    assert _login(client, "13600136000").status_code == 401
    headers = login(client, "13600136000")
    rt.settings.argon2_time_cost = 2  # the next login rehashes
    rt._passwords = None  # type: ignore[attr-defined]
    headers = login(client, "13600136000")
    assert _token(client, cid, secret).status_code == 200
    r = client.put(
        f"{API}/me/payment-password",
        headers=headers,
        json={"password": PASSWORD, "new_payment_password": "135790"},
    )
    assert r.status_code == 204
    names = [name for name, _, _ in checks]
    assert names.count("verify") >= 5 and names.count("hash") >= 3
    assert all(out == 0 and free for _, out, free in checks), checks


# --- throttling --------------------------------------------------------------


def test_growing_delay_instead_of_a_long_lock(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    person_with_account(rt, client, phone="13800138000")
    for _ in range(rt.settings.login_max_failures - 1):
        assert _login(client, "13800138000").status_code == 401
    # The fifth failure makes the next attempt wait 1 s, then 2 s, 4 s ...
    for wait in (1, 2, 4, 8):
        assert _login(client, "13800138000").status_code == 401
        r = _login(client, "13800138000", PASSWORD)
        assert r.status_code == 429 and r.json()["code"] == "LOGIN_LOCKED"
        assert r.headers["Retry-After"] == str(wait)
        clock.advance(timedelta(seconds=wait))
    # The owner is not shut out for long: right after the wait, the password works.
    assert _login(client, "13800138000", PASSWORD).status_code == 200
    # ... and a success starts the count over.
    for _ in range(rt.settings.login_max_failures - 1):
        assert _login(client, "13800138000").status_code == 401
    assert _login(client, "13800138000", PASSWORD).status_code == 200


def test_delay_is_capped_and_the_same_for_unknown_logins(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    cap = rt.settings.login_delay_cap_seconds
    for who in ("13800138000", "13911112222"):  # no account either way
        waits = []
        for _ in range(rt.settings.login_max_failures + 12):
            assert _login(client, who).status_code == 401
            r = _login(client, who)
            if r.status_code == 429:
                waits.append(int(r.headers["Retry-After"]))
                clock.advance(timedelta(seconds=waits[-1]))
        assert waits[:4] == [1, 2, 4, 8] and max(waits) == cap


def _peer_client(rt: Runtime, peer: str) -> TestClient:
    return AppClient(create_app(rt), client=(peer, 40000), raise_server_exceptions=False)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`qinqing serve` as started: a local peer rotating X-Forwarded-For is still one
    address (uvicorn's own proxy handling, which trusts 127.0.0.1, is off)."""
    captured: dict[str, Any] = {}
    monkeypatch.setattr(serve, "open_runtime", lambda: rt)
    monkeypatch.setattr("qinqing.kit.logs.configure", lambda **_: None)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app, **kw))
    serve.run(host="127.0.0.1", port=8000, demo=False)
    config = uvicorn.Config(**captured)
    config.load()
    limit = rt.settings.login_max_failures_per_address
    with AppClient(config.loaded_app, client=("127.0.0.1", 40000)) as c:
        for i in range(limit):
            r = _login(c, f"139{i:08d}", headers={"X-Forwarded-For": f"203.0.113.{i}"})
            assert r.status_code == 401
        r = _login(c, "13700000000", headers={"X-Forwarded-For": "198.51.100.7"})
        assert r.status_code == 429


def test_a_trusted_proxy_names_the_client(rt: Runtime) -> None:
    rt.settings.trusted_proxies = "10.0.0.0/24"
    limit = rt.settings.login_max_failures_per_address
    with _peer_client(rt, "10.0.0.9") as proxy:
        for i in range(limit):
            r = _login(proxy, f"139{i:08d}", headers={"X-Forwarded-For": "203.0.113.5"})
            assert r.status_code == 401
        # That client is paused; another one behind the same proxy is not.
        r = _login(proxy, "13700000000", headers={"X-Forwarded-For": "203.0.113.5"})
        assert r.status_code == 429
        r = _login(proxy, "13700000000", headers={"X-Forwarded-For": "198.51.100.7"})
        assert r.status_code == 401
    # A peer outside the trusted list cannot claim to be someone else.
    with _peer_client(rt, "192.0.2.1") as stranger:
        for i in range(limit):
            _login(stranger, f"138{i:08d}", headers={"X-Forwarded-For": f"203.0.113.{i + 10}"})
        r = _login(stranger, "13700000001", headers={"X-Forwarded-For": "198.51.100.8"})
        assert r.status_code == 429


def test_trusted_proxies_must_be_addresses() -> None:
    from pydantic import ValidationError

    from qinqing.config import Settings

    with pytest.raises(ValidationError, match="not an IP address"):
        Settings(trusted_proxies="10.0.0.1, proxy.example")
    assert Settings(trusted_proxies=" 10.0.0.1, 2001:db8::/32 ").trusted_proxy_list == [
        "10.0.0.1",
        "2001:db8::/32",
    ]


# --- HTTP Basic client authentication (RFC 6749 section 2.3.1) ---------------


def _basic(cid: str, secret: str) -> dict[str, str]:
    raw = f"{quote_plus(cid)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_client_authenticates_with_http_basic(rt: Runtime, client: TestClient) -> None:
    from qinqing.auth import service

    with rt.db.unit_of_work() as s:
        c, secret = service.add_client(
            s,
            rt,
            name="bank with an odd secret",
            kind="bank",
            region_code="150600",
            bank_code="TESTBANK",
            actor=OPERATOR,
            secret="s3cr:t %/+é",
        )
    form = {"grant_type": "client_credentials"}
    r = client.post(f"{API}/auth/token", data=form, headers=_basic(c.id, secret))
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "bank-links family"
    token = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.post(f"{API}/auth/logout", headers=token).status_code == 204

    bad = client.post(f"{API}/auth/token", data=form, headers=_basic(c.id, "wrong"))
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert bad.headers["WWW-Authenticate"].startswith("Basic")
    garbled = client.post(f"{API}/auth/token", data=form, headers={"Authorization": "Basic %%%"})
    assert garbled.status_code == 401 and garbled.json()["code"] == "INVALID_CLIENT"
    nothing = client.post(f"{API}/auth/token", data=form)
    assert nothing.status_code == 401 and nothing.json()["error"] == "invalid_client"
    # RFC 6749 §5.2: a description client libraries can show, in printable ASCII,
    # whatever language the caller asked for.
    zh = client.post(f"{API}/auth/token", data=form, headers={"Accept-Language": "zh-CN"})
    for answer in (bad, garbled, nothing, zh):
        description = answer.json()["error_description"]
        assert description and description.isascii() and description.isprintable()


def test_credentials_in_header_and_body_at_once_are_refused(
    rt: Runtime, client: TestClient
) -> None:
    cid, secret = add_client(rt, "institution")
    for extra in ({"client_id": cid, "client_secret": secret}, {"client_id": cid}):
        r = client.post(
            f"{API}/auth/token",
            data={"grant_type": "client_credentials", **extra},
            headers=_basic(cid, secret),
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_request"
        assert r.json()["code"] == "CLIENT_CREDENTIALS_TWICE"


def test_stale_counters_and_codes_are_purged(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    from sqlalchemy import func, select

    from qinqing.auth import registration, throttle
    from qinqing.auth.models import LoginThrottle, RegistrationCode

    _, number = add_person(rt, name="王芳")
    assert (
        client.post(
            f"{API}/auth/register/sms-code", json={"id_number": number, "name": "王芳"}
        ).status_code
        == 202
    )
    assert _login(client, "13911112222").status_code == 401

    def counts() -> tuple[int, int]:
        with rt.db.read_only() as s:
            return (
                s.execute(select(func.count()).select_from(LoginThrottle)).scalar_one(),
                s.execute(select(func.count()).select_from(RegistrationCode)).scalar_one(),
            )

    def purge() -> None:
        with rt.db.unit_of_work() as s:
            throttle.purge(s, rt.settings, clock.now())
            registration.purge_codes(s, clock.now())

    before = counts()
    assert before == (5, 1)  # login: account + address; SMS: ID number (hour, day) + address
    purge()
    assert counts() == before
    clock.advance(timedelta(hours=rt.settings.login_failure_memory_hours, minutes=10))
    purge()
    assert counts() == (0, 0)


def test_a_guess_that_raced_past_the_check_is_refused_after_hashing(
    rt: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel guesses all pass the first check; those that finish hashing after the
    account was held back are refused, whatever their result."""
    from qinqing.auth import throttle

    person_with_account(rt, client, phone="13800138000")
    real = PasswordHasher.verify
    done = False

    def meanwhile(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        nonlocal done
        if not done:  # other guesses fail while this one hashes
            done = True
            acct = throttle.account_key(rt.vault, "13800138000")
            addr = throttle.address_key(rt.vault, "elsewhere")
            for _ in range(rt.settings.login_max_failures):
                with rt.db.unit_of_work() as s:
                    throttle.record_login_failure(s, rt.settings, acct, addr, rt.clock.now())
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", meanwhile)
    r = _login(client, "13800138000", PASSWORD)  # the right password, too late
    assert r.status_code == 429 and r.json()["code"] == "LOGIN_LOCKED"
