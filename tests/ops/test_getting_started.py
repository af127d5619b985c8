"""docs/getting-started.md, run as written: every ``sh`` block in order, in one bash
session, against a real HTTP server on 127.0.0.1 holding the demo data, on SQLite
and PostgreSQL. Doc and service cannot drift apart."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from qinqing.entrypoints import demo
from qinqing.entrypoints.app import create_app
from qinqing.runtime import Runtime
from support.databases import IN_CI

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"
DOC_BASE = "http://127.0.0.1:8000"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def sh_blocks() -> list[str]:
    return SH_BLOCK.findall(GUIDE.read_text("utf-8"))


@pytest.fixture
def demo_server(rt: Runtime) -> Iterator[str]:
    """The demo data served over HTTP on a free loopback port; stops at the end."""
    demo.load(rt)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(rt), log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the test server did not start")
            thread.join(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_the_guide_has_the_first_calls() -> None:
    text = "\n".join(sh_blocks())
    for call in (
        "/healthz",
        "/readyz",
        "/api/v1/auth/login",
        "/api/v1/auth/token",
        "/api/v1/me ",
        "/api/v1/me/family",
        "/unbind-check",
        '/unbind"',
    ):
        assert call in text, call
    assert "grant_type=client_credentials" in text
    assert '"login": "13800000001"' in text and demo.PERSON_PASSWORD in text
    assert "qq_demo_bank" in text and "demo-bank-secret-2026" in text


@pytest.mark.skipif(
    shutil.which("curl") is None and not IN_CI, reason="the guide's commands need curl"
)
def test_the_guide_runs_as_written_against_the_demo(demo_server: str) -> None:
    script = "\n".join(block.replace(DOC_BASE, demo_server) for block in sh_blocks())
    done = subprocess.run(  # noqa: S603 - our own document, run against our own server
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    assert '{"status":"ok"}' in out and '{"status":"ready"}' in out
    assert '"token_type":"bearer"' in out
    assert '"scope":"bank-links family"' in out
    assert '"balance_fen":48000' in out and '"available_fen":35200' in out
    assert "spouse active True 李娜" in out and "mother active False 王秀英" in out
    assert '"eligible":false,"blockers":[{"code":"UNSETTLED_PAYMENTS"' in out
    assert '{"eligible":true,"blockers":[]' in out
    assert "request completed link ended" in out
    assert '"code":"UNBIND_REFUSED"' in out and "HTTP 409" in out
