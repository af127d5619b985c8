"""Every answer carries X-Request-Id, unexpected 500s included; their problem body and
the log name it; a 500 leaves the keep-alive connection usable."""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qinqing.entrypoints.app import create_app
from qinqing.kit.logs import RedactingFilter
from qinqing.runtime import Runtime
from support.client import AppClient


def _app_with_a_failing_route(rt: Runtime) -> FastAPI:
    app = create_app(rt)

    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError("unexpected")

    return app


@pytest.fixture
def boom_client(rt: Runtime) -> Iterator[TestClient]:
    with AppClient(_app_with_a_failing_route(rt), raise_server_exceptions=False) as c:
        yield c


def test_a_500_carries_the_request_id_in_header_body_and_log(
    boom_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # The handler's filter puts the request id on each record, as in production.
    for logger in ("qinqing.http", "qinqing.errors"):
        logging.getLogger(logger).addFilter(RedactingFilter())
    try:
        r = boom_client.get("/test-only/boom")
    finally:
        for logger in ("qinqing.http", "qinqing.errors"):
            for f in list(logging.getLogger(logger).filters):
                logging.getLogger(logger).removeFilter(f)
    assert r.status_code == 500
    rid = r.headers["X-Request-Id"]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "INTERNAL_ERROR" and r.json()["request_id"] == rid
    lines = [rec for rec in caplog.records if rec.name in ("qinqing.http", "qinqing.errors")]
    assert lines and all(getattr(rec, "request_id", None) == rid for rec in lines)
    assert any(" 500 " in rec.getMessage() for rec in lines if rec.name == "qinqing.http")


def test_a_well_formed_incoming_request_id_is_kept(boom_client: TestClient) -> None:
    r = boom_client.get("/test-only/boom", headers={"X-Request-Id": "lb-7f3a.42_x"})
    assert r.headers["X-Request-Id"] == "lb-7f3a.42_x" and r.json()["request_id"] == "lb-7f3a.42_x"
    for bad in ("x" * 65, "a b", "-leading", "a/b"):
        got = boom_client.get("/healthz", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert got != bad and len(got) == 32


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/api/v1/me", {}),  # 401
        ("GET", "/api/v1/nowhere", {}),  # 404
        ("POST", "/api/v1/auth/login", {"json": {}}),  # 422
        ("POST", "/api/v1/auth/login", {"content": b"x" * (3 * 1024 * 1024)}),  # 413 (guard)
    ],
)
def test_every_answer_has_a_request_id(
    boom_client: TestClient, method: str, path: str, kw: dict[str, object]
) -> None:
    r = boom_client.request(method, path, **kw)  # type: ignore[arg-type]
    assert len(r.headers.get("X-Request-Id", "")) == 32


def test_a_500_keeps_the_keep_alive_connection_open(rt: Runtime) -> None:
    """Over a real uvicorn on 127.0.0.1: a second request on the same connection works."""
    config = uvicorn.Config(
        _app_with_a_failing_route(rt),
        host="127.0.0.1",
        port=0,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                pytest.fail("server did not start")
            threading.Event().wait(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/test-only/boom")
        first = conn.getresponse()
        first.read()
        assert first.status == 500 and first.getheader("X-Request-Id")
        assert (first.getheader("Connection") or "").lower() != "close"
        sock = conn.sock
        conn.request("GET", "/healthz")
        second = conn.getresponse()
        second.read()
        assert second.status == 200 and conn.sock is sock
        conn.close()
    finally:
        server.should_exit = True
        thread.join()
