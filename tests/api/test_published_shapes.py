"""The answers a bank, a hospital or a person's phone relies on have exactly the
published shape (fields a client would parse, nothing that contradicts them)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from counter_support import clerk, counter_family, counter_unbind, unbind_body
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
