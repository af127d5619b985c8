"""A forgotten login password (both databases): a code to the registry phone, the
same 202 for anyone, a reset that ends every session and lifts a login lock (the
owner's way back in), a face check instead of the code, and wrong codes counted."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from qinqing.auth.verification import simulated_face_token
from qinqing.runtime import Runtime
from support.accounts import PASSWORD, id_number, login, person_with_account, sms_lines

API = "/api/v1"
NEW = "Newpass2026x"


def _ask(client: TestClient, number: str, name: str) -> Any:
    return client.post(
        f"{API}/auth/password-reset/sms-code", json={"id_number": number, "name": name}
    )


def _reset(client: TestClient, number: str, name: str, **proof: str) -> Any:
    body = {"id_number": number, "name": name, "new_password": NEW, **proof}
    return client.post(f"{API}/auth/password-reset", json=body)


def test_a_code_to_the_registry_phone_resets_the_password_and_ends_every_session(
    rt: Runtime, client: TestClient
) -> None:
    _, number, old_session = person_with_account(rt, client, phone="13800138000")
    before = len(sms_lines(rt))
    r = _ask(client, number, "张三")
    assert r.status_code == 202
    [message] = sms_lines(rt)[before:]
    assert "重置" in message["text"]
    wrong = _reset(
        client, number, "张三", sms_code="000000" if message["code"] != "000000" else "111111"
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "SMS_CODE_INVALID"
    ok = _reset(client, number, "张三", sms_code=message["code"])
    assert ok.status_code == 204, ok.text
    assert client.get(f"{API}/me", headers=old_session).status_code == 401
    fresh = login(client, "13800138000", NEW)
    kinds = [
        n["kind"] for n in client.get(f"{API}/me/notifications", headers=fresh).json()["items"]
    ]
    assert "account.password_reset" in kinds
    # A code is used once.
    again = _reset(client, number, "张三", sms_code=message["code"])
    assert again.status_code == 409 and again.json()["code"] == "SMS_CODE_USED"


def test_anyone_gets_the_same_answer_and_only_the_person_a_message(
    rt: Runtime, client: TestClient
) -> None:
    _, number, _ = person_with_account(rt, client, phone="13800138000")
    answers = [
        _ask(client, number, "张三"),
        _ask(client, number, "李四"),  # a wrong name
        _ask(client, id_number(seq=77), "张三"),  # nobody
    ]
    assert {a.status_code for a in answers} == {202}
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert len(sms_lines(rt)) == 1 + 1  # the registration's code and this one
    # Checking a code for nobody answers as a wrong code does.
    nobody = _reset(client, id_number(seq=77), "张三", sms_code="123456")
    assert nobody.status_code == 422 and nobody.json()["code"] == "SMS_CODE_INVALID"


def test_a_locked_login_is_no_lock_in_for_the_owner(rt: Runtime, client: TestClient) -> None:
    """An attacker failing logins on purpose keeps the account locked; the owner,
    with the phone on the registry record, gets back in at once."""
    _, number, _ = person_with_account(rt, client, phone="13800138000")
    for _ in range(rt.settings.login_max_failures + 2):
        client.post(f"{API}/auth/login", json={"login": "13800138000", "password": "x-wrong-1"})
    locked = client.post(f"{API}/auth/login", json={"login": "13800138000", "password": PASSWORD})
    assert locked.status_code == 429
    _ask(client, number, "张三")
    code = sms_lines(rt)[-1]["code"]
    assert _reset(client, number, "张三", sms_code=code).status_code == 204
    assert login(client, "13800138000", NEW)


def test_a_face_check_instead_of_the_code(rt: Runtime, client: TestClient) -> None:
    person, number, _ = person_with_account(rt, client, phone="13800138000")
    bad = _reset(client, number, "张三", face_token=simulated_face_token(person.id) + "x")
    assert bad.status_code == 403
    ok = _reset(client, number, "张三", face_token=simulated_face_token(person.id))
    assert ok.status_code == 204
    both = _reset(client, number, "张三", face_token="t", sms_code="123456")
    assert both.status_code == 422 and both.json()["code"] == "REGISTRATION_PROOF_REQUIRED"
    weak = client.post(
        f"{API}/auth/password-reset",
        json={"id_number": number, "name": "张三", "new_password": "abc", "sms_code": "123456"},
    )
    assert weak.status_code == 422 and weak.json()["code"] == "WEAK_PASSWORD"
