"""A body of deeply nested JSON (``[[[[…``, 50,000 levels) is bad input like any
other: every JSON route of the published API answers it 4xx problem+json, never
500 — the payment fast lane (which reads the body itself, before the framework)
included, with the caller's token cached so the lane does take the request."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support.ledger import API, authorize_body, fund, institution_headers, make_family

NESTED = b"[" * 50_000


def _json_routes(client: TestClient) -> list[tuple[str, str]]:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    routes = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                routes.append((method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)))
    return routes


def test_deeply_nested_json_is_4xx_on_every_json_route(rt: Runtime, client: TestClient) -> None:
    fam = make_family(rt)
    fund(rt, fam.holder_id, 10_000)
    inst = institution_headers(rt, client)
    # A first payment caches the institution's principal: on PostgreSQL the next
    # payment calls are the fast lane's.
    held = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 100, "N1"), headers=inst
    )
    assert held.status_code == 201, held.text
    routes = _json_routes(client)
    paths = {p for _, p in routes}
    assert f"{API}/payments/authorize" in paths and len(routes) >= 20
    routes.append(("POST", f"{API}/payments/{held.json()['payment_id']}/settle"))
    answers = {}
    for method, path in routes:
        r = client.request(
            method, path, content=NESTED, headers={**inst, "Content-Type": "application/json"}
        )
        answers[(method, path)] = r.status_code
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/problem+json"), (method, path)
    # The same answer everywhere, the fast lane's routes included.
    assert set(answers.values()) == {400}, answers
    # The hold is untouched: the nested settle changed nothing.
    r = client.post(
        f"{API}/payments/{held.json()['payment_id']}/settle", json={"amount_fen": 100}, headers=inst
    )
    assert r.status_code == 200 and r.json()["status"] == "settled", r.text
