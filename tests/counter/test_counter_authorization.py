"""Who may use the counter desk: every counter endpoint against every actor, one
expected status per cell, on SQLite and PostgreSQL.

Only a clerk of the region gets through. Anyone not logged in is 401; any
other logged-in actor 403, whatever they name; a clerk of another region gets
the 404 an unknown person, link or request gets. A refused cell changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from fastapi.testclient import TestClient

from counter_support import (
    COUNTER,
    bind_body,
    clerk,
    counter_family,
    receipt_url,
    staff,
    unbind_body,
)
from qinqing.runtime import Runtime
from support import add_client, add_person, id_number, login, person_with_account, register
from unbind_support import count_requests, load_link

ENDPOINTS = ("lookup", "unbind", "bind", "receipt")

# actor -> expected status of (lookup, unbind, bind, receipt)
MATRIX: dict[str, tuple[int, int, int, int]] = {
    "the person": (403, 403, 403, 403),
    "another person": (403, 403, 403, 403),
    "clerk of the region": (200, 200, 201, 200),
    "clerk of another region": (404, 404, 404, 404),
    "reviewer of the region": (403, 403, 403, 403),
    "bank client": (403, 403, 403, 403),
    "institution": (403, 403, 403, 403),
    "anonymous": (401, 401, 401, 401),
}


def _client_token(client: TestClient, rt: Runtime, kind: str) -> dict[str, str]:
    cid, secret = add_client(rt, kind, "150600")
    r = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.mark.parametrize("actor", list(MATRIX))
def test_counter_authorization_matrix(rt: Runtime, client: TestClient, actor: str) -> None:
    # A family in 鄂尔多斯 whose holder has an app account ("the person"); a second
    # family whose link the region's clerk already unbound (the receipt to print);
    # and two persons who came to bind.
    fam = counter_family(rt)
    register(client, fam.holder_number, "王建国", fam.holder_phone)
    done = counter_family(rt, seq=2)
    _, bind_holder = add_person(
        rt, name="赵强", number=id_number(born=date(1970, 1, 1), seq=3, sex="M"), phone=None
    )
    _, bind_member = add_person(
        rt, name="钱芳", number=id_number(born=date(1972, 2, 2), seq=3), phone=None
    )
    desk = clerk(rt, client, "eeds-clerk")
    r = client.post(
        f"{COUNTER}/unbind", headers=desk, json=unbind_body(done.link_id, done.holder_number)
    )
    assert r.status_code == 200, r.text
    receipt_of = r.json()["request"]["id"]
    requests_before = count_requests(rt)

    actors: dict[str, Callable[[], dict[str, str]]] = {
        "the person": lambda: login(client, fam.holder_phone),
        "another person": lambda: person_with_account(
            rt, client, name="孙丽", phone="13900139000", seq=40
        )[2],
        "clerk of the region": lambda: desk,
        "clerk of another region": lambda: clerk(rt, client, "gz-clerk", "440100"),
        "reviewer of the region": lambda: staff(rt, client, "eeds-review", "reviewer", "150600"),
        "bank client": lambda: _client_token(client, rt, "bank"),
        "institution": lambda: _client_token(client, rt, "institution"),
        "anonymous": lambda: {},
    }
    headers = actors[actor]()

    got = (
        client.post(
            f"{COUNTER}/lookup", headers=headers, json={"id_number": fam.holder_number}
        ).status_code,
        client.post(
            f"{COUNTER}/unbind", headers=headers, json=unbind_body(fam.link_id, fam.holder_number)
        ).status_code,
        client.post(
            f"{COUNTER}/bind",
            headers=headers,
            json=bind_body(bind_holder, "赵强", bind_member, "钱芳"),
        ).status_code,
        client.get(receipt_url(receipt_of), headers=headers).status_code,
    )
    assert dict(zip(ENDPOINTS, got, strict=True)) == dict(
        zip(ENDPOINTS, MATRIX[actor], strict=True)
    )
    if actor != "clerk of the region":
        assert load_link(rt, fam.link_id).status == "active"
        assert count_requests(rt) == requests_before
