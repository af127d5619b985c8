"""docs/vouchers.md's curl walk-through, request for request, against the demo data
(what `qinqing serve --demo` loads); and the page still lists exactly these requests."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from qinqing.entrypoints import demo
from qinqing.runtime import Runtime

API = "/api/v1"
DOC = Path(__file__).resolve().parents[2] / "docs" / "vouchers.md"
WALK = [
    ("POST", "/auth/token"),
    ("POST", "/auth/login"),
    ("GET", "/me/family"),
    ("POST", "/vouchers"),
    ("POST", "/vouchers/redeem"),
    ("POST", "/payments/authorize"),
    ("POST", "/payments/{id}/settle"),
    ("POST", "/payments/authorize"),
]


def _doc_requests() -> list[tuple[str, str]]:
    text = DOC.read_text("utf-8")
    script = text.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    calls = []
    for command in re.findall(r"curl [^|)\n]*", script):
        method = re.search(r"-X (\w+)", command)
        path = re.search(r"\$BASE(/[^\s\"']*)", command)
        assert path, command
        calls.append(
            (method.group(1) if method else "GET", re.sub(r"\$\w+", "{id}", path.group(1)))
        )
    return calls


def test_the_page_lists_the_requests_this_test_makes() -> None:
    assert _doc_requests() == WALK
    text = DOC.read_text("utf-8")
    hospital = next(c for c in demo.CLIENTS if c[2] == "institution")
    zhang = next(p for p in demo.PEOPLE if p.name == "张伟")
    for credential in (hospital[0], hospital[5], zhang.phone or "", demo.PERSON_PASSWORD):
        assert credential in text


def test_the_walk_through_against_the_demo_data(rt: Runtime, client: TestClient) -> None:
    demo.load(rt)
    hospital_id, *_rest, hospital_secret = next(c for c in demo.CLIENTS if c[2] == "institution")
    r = client.post(
        f"{API}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": hospital_id,
            "client_secret": hospital_secret,
        },
    )
    hospital = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = client.post(
        f"{API}/auth/login", json={"login": "13800000001", "password": demo.PERSON_PASSWORD}
    )
    zhang = {"Authorization": f"Bearer {r.json()['access_token']}"}
    family = client.get(f"{API}/me/family", headers=zhang).json()
    link = next(x["id"] for x in family["as_holder"] if x["relation"] == "father")

    r = client.post(f"{API}/vouchers", json={"link_id": link}, headers=zhang)
    assert r.status_code == 201, r.text
    token = r.json()["token"]

    r = client.post(f"{API}/vouchers/redeem", json={"token": token}, headers=hospital)
    assert r.status_code == 200, r.text
    redeemed = r.json()
    assert redeemed["person"]["name"] == "张建国"
    assert redeemed["person"]["id_number"] == "152701********0012"
    assert redeemed["mutual_aid"]["relation"] == "father"
    # The page's sample answer shows the same figures.
    sample = json.loads(DOC.read_text("utf-8").split("```json\n", 1)[1].split("```", 1)[0])
    assert redeemed["person"] == sample["person"]
    for key in ("holder_name", "payable_fen", "used_this_year_fen", "yearly_limit_fen"):
        assert redeemed["mutual_aid"][key] == sample["mutual_aid"][key], key

    r = client.post(
        f"{API}/payments/authorize",
        json={"voucher_token": token, "amount_fen": 8650, "reference": "BILL-20261201-0042"},
        headers={**hospital, "Idempotency-Key": "bill-20261201-0042"},
    )
    assert r.status_code == 201, r.text
    payment = r.json()["payment_id"]
    r = client.post(f"{API}/payments/{payment}/settle", json={"amount_fen": 8650}, headers=hospital)
    assert r.status_code == 200 and r.json()["status"] == "settled"
    r = client.post(
        f"{API}/payments/authorize",
        json={"voucher_token": token, "amount_fen": 100, "reference": "BILL-20261201-0043"},
        headers={**hospital, "Accept-Language": "en"},
    )
    assert r.status_code == 409 and r.json()["code"] == "VOUCHER_USED"
