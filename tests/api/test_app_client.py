"""The suite's in-process client (``support.client.AppClient``) answers as
starlette's TestClient does: the same statuses, redirects, headers, cookies and
bodies, and the same handling of an app that raises. Every API test goes through
it, so a difference here would make all of them test something else."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qinqing.entrypoints.app import create_app
from qinqing.runtime import Runtime
from support.accounts import person_with_account
from support.client import AppClient

# What differs between two requests whatever the client: ids, times, tokens.
VOLATILE_HEADERS = {"date", "x-request-id", "set-cookie", "content-length"}
TOKEN = re.compile(rb"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f-]{27}|[A-Za-z0-9_-]{40,}")


def _seen(r: object) -> tuple[object, ...]:
    assert hasattr(r, "status_code")
    history = [(h.status_code, h.headers.get("location")) for h in r.history]  # type: ignore[attr-defined]
    headers = {k: v for k, v in r.headers.items() if k not in VOLATILE_HEADERS}  # type: ignore[attr-defined]
    cookies = sorted(r.cookies.keys())  # type: ignore[attr-defined]
    body = TOKEN.sub(b"#", r.content)  # type: ignore[attr-defined]
    return r.status_code, str(r.url), history, headers, cookies, body  # type: ignore[attr-defined]


def test_answers_as_starlettes_test_client(rt: Runtime) -> None:
    app = create_app(rt)
    _, _, bearer = person_with_account(rt, AppClient(app))
    calls: list[tuple[str, str, dict[str, object]]] = [
        ("GET", "/healthz", {}),
        ("GET", "/login", {}),
        ("HEAD", "/login", {}),
        ("GET", "/me/family", {}),  # redirected to the login page, and followed
        ("GET", "/api/v1/nothing-here", {}),
        ("GET", "/api/v1/regions?limit=2", {}),
        ("GET", "/api/v1/me/family", {"headers": bearer}),
        ("POST", "/api/v1/auth/token", {"data": {"grant_type": "password"}}),
        ("POST", "/api/v1/auth/login", {"json": {"phone": "1", "password": "x" * 9}}),
        ("POST", "/login", {"data": {"phone": "13800000000", "password": "wrong"}}),
        ("GET", "/static/qinqing.css", {}),
    ]
    with (
        TestClient(app, raise_server_exceptions=False) as theirs,
        AppClient(app, raise_server_exceptions=False) as ours,
    ):
        for method, path, kwargs in calls:
            expected = _seen(theirs.request(method, path, **kwargs))  # type: ignore[arg-type]
            got = _seen(ours.request(method, path, **kwargs))  # type: ignore[arg-type]
            assert got == expected, (method, path)


def _failing_app() -> FastAPI:
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("unexpected")

    return app


def test_an_app_that_raises_is_a_500_or_the_exception_as_with_starlettes() -> None:
    app = _failing_app()
    with (
        TestClient(app, raise_server_exceptions=False) as theirs,
        AppClient(app, raise_server_exceptions=False) as ours,
    ):
        assert _seen(ours.get("/boom")) == _seen(theirs.get("/boom"))
        assert ours.get("/boom").status_code == 500
    for client in (TestClient(app), AppClient(app)):
        with client, pytest.raises(RuntimeError, match="unexpected"):
            client.get("/boom")
