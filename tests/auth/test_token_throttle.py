"""`/auth/token` is throttled like a login (the review found no limit while each try
costs an argon2 hash, unauthenticated): growing delays per client id, known or not,
and a pause per address; the answer is OAuth's `slow_down` with `Retry-After`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.accounts import add_client

API = "/api/v1"


def _token(client: TestClient, cid: str, secret: str) -> Any:
    return client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )


def test_wrong_secrets_slow_a_client_down_and_the_right_one_waits_too(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    cid, secret = add_client(rt, "institution")
    answers = [_token(client, cid, "wrong-secret") for _ in range(rt.settings.login_max_failures)]
    assert {a.status_code for a in answers} == {401}
    throttled = _token(client, cid, "wrong-secret")
    assert throttled.status_code == 429
    body = throttled.json()
    assert body["code"] == "TOKEN_THROTTLED" and body["error"] == "slow_down"
    assert body["error_description"]
    wait = int(throttled.headers["Retry-After"])
    assert wait >= 1
    # While it waits even the right secret is refused: guessing in parallel gains nothing.
    assert _token(client, cid, secret).status_code == 429
    clock.advance(timedelta(seconds=wait))
    assert _token(client, cid, secret).status_code == 200
    # A success starts over: the next wrong secret is a plain 401 again.
    assert _token(client, cid, "wrong-secret").status_code == 401


def test_an_unknown_client_id_is_throttled_like_a_known_one(
    rt: Runtime, client: TestClient
) -> None:
    codes = [
        _token(client, "qq_no_such_client", "x").status_code
        for _ in range(rt.settings.login_max_failures + 1)
    ]
    assert codes[-1] == 429


def test_one_address_trying_many_client_ids_is_paused(rt: Runtime, client: TestClient) -> None:
    cid, secret = add_client(rt, "institution")
    for n in range(rt.settings.login_max_failures_per_address):
        assert _token(client, f"qq_guess_{n}", "x").status_code == 401
    # The address is paused now, for every client id, the real one included.
    assert _token(client, cid, secret).status_code == 429
