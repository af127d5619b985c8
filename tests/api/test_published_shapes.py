"""The answers a bank, a hospital or a person's phone relies on have exactly the
published shape (fields a client would parse, nothing that contradicts them)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.testclient import TestClient

from qinqing.entrypoints.app import create_app
from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_person, add_staff, person_with_account, sms_lines
from support.counter import clerk, counter_family, counter_unbind, unbind_body


def test_a_login_answers_exactly_the_token_its_type_and_lifetime(
    rt: Runtime, client: TestClient
) -> None:
    person_with_account(rt, client, phone="13800138000")
    add_staff(rt, "clerk1", "clerk")
    for login, password in (("13800138000", None), ("clerk1", STAFF_PASSWORD)):
        body = {"login": login, "password": password or "Secret2026pw"}
        r = client.post("/api/v1/auth/login", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert set(answer) == {"access_token", "token_type", "expires_in"}
        assert answer["token_type"].lower() == "bearer"
        assert isinstance(answer["expires_in"], int) and answer["expires_in"] > 0


def test_a_counter_unbind_accepts_the_common_names_of_the_id_card(
    rt: Runtime, client: TestClient
) -> None:
    """身份证 is `resident_id` here; desks that call it `id_card` are understood too."""
    fam = counter_family(rt)
    desk = clerk(rt, client, "clerk1")
    body = unbind_body(fam.link_id, fam.holder_number, doc_type="id_card")
    r = counter_unbind(client, desk, body)
    assert r.status_code == 200, r.text
    assert r.json()["request"]["status"] == "completed"
    assert r.json()["link"]["status"] == "ended"
    r = counter_unbind(
        client, desk, unbind_body(fam.link_id, fam.holder_number, doc_type="passport")
    )
    assert r.status_code == 422


def test_the_simulated_sms_is_written_before_the_202_is_sent(rt: Runtime) -> None:
    """A demo or an acceptance script reads simulated-sms.jsonl right after the 202;
    the line must already be there when the answer leaves the server."""
    _, number = add_person(rt, name="周七", phone="13600000009", seq=7)
    app = create_app(rt)
    body = json.dumps({"id_number": number, "name": "周七"}).encode()
    seen_at_answer: list[int] = []
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        if message["type"] == "http.response.body" and not message.get("more_body"):
            seen_at_answer.append(len(sms_lines(rt)))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/register/sms-code",
        "raw_path": b"/api/v1/auth/register/sms-code",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert status == [202]
    assert seen_at_answer == [1]
    assert sms_lines(rt)[0]["to"] == "13600000009"


def test_a_voucher_for_oneself_needs_no_body(rt: Runtime, client: TestClient) -> None:
    _, _, headers = person_with_account(rt, client, phone="13800138000")
    r = client.post("/api/v1/vouchers", headers=headers)
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"token", "expires_at", "qr_svg"}
    assert r.json()["qr_svg"].startswith("<svg")
