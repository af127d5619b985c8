"""HTTP hygiene: no caching of tokens or personal data, security headers, /docs without
a third-party CDN, UUID-safe log redaction, and one access-log format."""

from __future__ import annotations

import logging
import re
import uuid

from fastapi.testclient import TestClient

from qinqing.entrypoints.app import create_app
from qinqing.kit.logs import configure, redact
from qinqing.runtime import Runtime
from support.accounts import add_person, login, register
from support.client import AppClient

API = "/api/v1"


def test_tokens_and_personal_data_are_never_cached(rt: Runtime, client: TestClient) -> None:
    _, number = add_person(rt, name="周九", phone="13687654321")
    register(client, number, "周九", "13687654321")
    token = client.post(f"{API}/auth/login", json={"login": "13687654321", "password": "x"})
    headers = login(client, "13687654321")
    answers = [
        client.post(f"{API}/auth/login", json={"login": "13687654321", "password": "Secret2026pw"}),
        token,  # a refusal too
        client.get(f"{API}/me", headers=headers),
        client.get(f"{API}/me/family", headers=headers),
        client.get(f"{API}/me", headers={"Authorization": "Bearer nope"}),
    ]
    for r in answers:
        assert r.headers["Cache-Control"] == "no-store", r.request.url


def test_public_answers_may_be_cached(client: TestClient) -> None:
    for path in (
        f"{API}/regions/150600/policy",
        f"{API}/regions/150600/contribution-quote?base_fen=500000",
    ):
        r = client.get(path)
        assert r.status_code == 200 and "Cache-Control" not in r.headers


def test_security_headers_on_every_answer(client: TestClient) -> None:
    # Web pages (an unknown path is a page too) send a Referer to Qinqing itself only,
    # so a form's same-origin check keeps working; API answers send none at all.
    for path, referrer in (
        ("/healthz", "no-referrer"),
        (f"{API}/me", "no-referrer"),
        ("/docs", "no-referrer"),
        ("/nowhere", "same-origin"),
    ):
        r = client.get(path)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == referrer, path
        assert "Strict-Transport-Security" not in r.headers  # plain HTTP


def test_hsts_only_over_tls(rt: Runtime) -> None:
    with AppClient(create_app(rt), base_url="https://testserver") as tls:
        assert tls.get("/healthz").headers["Strict-Transport-Security"].startswith("max-age=")


def test_docs_load_nothing_from_another_site(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(ref.startswith("/") for ref in refs)
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200 and asset.content, ref
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "/openapi.json" in client.get("/docs/init.js").text


def test_redaction_keeps_uuids_whole() -> None:
    opaque = "0b6c2a55-3e1d-4c7f-9a2b-f13812345678"
    line = redact(f"POST /api/v1/payments/{opaque}/void by 13812345678 id 150602198001010023")
    assert opaque in line
    assert "13812345678 " not in line and "[phone]" in line and "[id-number]" in line
    all_digits = str(uuid.UUID("12345678-1234-4234-8234-123456789012"))
    assert redact(f"link {all_digits}") == f"link {all_digits}"


def test_uvicorn_writes_no_access_line_of_its_own() -> None:
    """uvicorn logs its default access format whenever its access logger has a handler
    up the tree; with --workers each child configures our logging after uvicorn did."""
    before = logging.getLogger().handlers[:]
    try:
        configure(json_lines=False)
        assert not logging.getLogger("uvicorn.access").hasHandlers()
        assert logging.getLogger("uvicorn.error").hasHandlers()
    finally:
        logging.getLogger().handlers[:] = before
