"""The answers a bank, a hospital or a person's phone relies on have exactly the
published shape (fields a client would parse, nothing that contradicts them)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support import STAFF_PASSWORD, add_staff, person_with_account


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
