"""Errors are RFC 9457 problem+json with a stable code, in zh-CN or en; input is never echoed."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support.accounts import add_person

API = "/api/v1"


def test_validation_error_is_a_problem_without_the_input(client: TestClient) -> None:
    secret_number = "150602198001010023"
    r = client.post(f"{API}/auth/register", json={"id_number": secret_number, "name": ""})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "VALIDATION_ERROR" and body["status"] == 422
    fields = {e["field"] for e in body["errors"]}
    assert {"body.name", "body.phone", "body.password"} <= fields
    assert secret_number not in r.text


def test_unknown_route_and_method(client: TestClient) -> None:
    r = client.get(f"{API}/no-such-thing")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    r = client.delete(f"{API}/auth/login")
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"


def test_malformed_json_is_a_problem(client: TestClient) -> None:
    r = client.post(
        f"{API}/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR"


def test_messages_follow_accept_language(rt: Runtime, client: TestClient) -> None:
    body = {"login": "13800138000", "password": "Whatever1"}
    zh = client.post(f"{API}/auth/login", json=body)
    en = client.post(f"{API}/auth/login", json=body, headers={"Accept-Language": "en-US,en;q=0.9"})
    assert zh.json()["code"] == en.json()["code"] == "INVALID_CREDENTIALS"
    assert zh.json()["title"] == "账号或密码错误。"
    assert en.json()["title"] == "The login or password is wrong."
    # Lower q-values lose; unknown languages fall back to zh-CN.
    assert (
        client.post(f"{API}/auth/login", json=body, headers={"Accept-Language": "fr, en;q=0.1"})
        .json()["title"]
        .startswith("The")
    )
    assert (
        client.post(f"{API}/auth/login", json=body, headers={"Accept-Language": "fr"}).json()[
            "title"
        ]
        == "账号或密码错误。"
    )


def test_missing_and_bad_tokens(rt: Runtime, client: TestClient) -> None:
    add_person(rt)
    r = client.get(f"{API}/me")
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get(f"{API}/me", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    r = client.get(f"{API}/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert r.status_code == 401


def test_request_id_is_echoed(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"


def test_health_and_readiness(rt: Runtime, client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    rt.db.engine.dispose()
    # Point the runtime at a database that cannot be reached.
    from qinqing.kit.db import Database

    good = rt.db
    rt.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_size=1)
    try:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["database"] == "unreachable"
    finally:
        rt.db.dispose()
        rt.db = good


def test_nul_characters_are_refused_everywhere(client: TestClient) -> None:
    r = client.post(f"{API}/auth/login", json={"login": "\u0000", "password": "x"})
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR"
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "s"},
    )
    assert r.status_code == 422
    r = client.get(f"{API}/regions/150600/contribution-quote?base_fen=1%00")
    assert r.status_code == 422
    r = client.get(f"{API}/regions/15%0000/policy")
    assert r.status_code == 422


def test_oversized_body_is_refused(client: TestClient) -> None:
    r = client.post(
        f"{API}/auth/login",
        content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"
