"""The login phone changes only with a code sent to the new phone; a forgotten or
locked payment password is reset only after a step-up (a code to the registry phone
or a face check), which lifts its lock (both databases)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.auth import service
from qinqing.auth.models import PersonAccount
from qinqing.auth.verification import simulated_face_token
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from support.accounts import PASSWORD, login, person_with_account, sms_lines

API = "/api/v1"


def _verify(rt: Runtime, person_id: uuid.UUID, pin: str) -> str | None:
    try:
        with rt.db.unit_of_work() as s:
            acct = s.execute(
                select(PersonAccount).where(PersonAccount.person_id == person_id).with_for_update()
            ).scalar_one()
            service.verify_payment_password(s, rt, acct, pin, now=rt.clock.now())
    except DomainError as exc:
        return exc.code
    return None


def test_the_login_phone_changes_with_the_code_sent_to_the_new_phone(
    rt: Runtime, client: TestClient
) -> None:
    _, _, h = person_with_account(rt, client, phone="13800138000")
    r = client.post(f"{API}/me/phone/sms-code", headers=h, json={"phone": "139-0013-9000"})
    assert r.status_code == 202
    message = sms_lines(rt)[-1]
    assert message["to"] == "13900139000"
    wrong = "000000" if message["code"] != "000000" else "111111"
    bad = client.put(f"{API}/me/phone", headers=h, json={"phone": "13900139000", "sms_code": wrong})
    assert bad.status_code == 422 and bad.json()["code"] == "SMS_CODE_INVALID"
    # A code for one number does not confirm another.
    other = client.put(
        f"{API}/me/phone", headers=h, json={"phone": "13700137000", "sms_code": message["code"]}
    )
    assert other.status_code == 422
    ok = client.put(
        f"{API}/me/phone", headers=h, json={"phone": "13900139000", "sms_code": message["code"]}
    )
    assert ok.status_code == 204, ok.text
    assert login(client, "13900139000")
    old = client.post(f"{API}/auth/login", json={"login": "13800138000", "password": PASSWORD})
    assert old.status_code == 401
    kinds = [n["kind"] for n in client.get(f"{API}/me/notifications", headers=h).json()["items"]]
    assert "account.phone_changed" in kinds


def test_a_phone_another_account_uses_is_refused_after_the_code(
    rt: Runtime, client: TestClient
) -> None:
    _, _, h = person_with_account(rt, client, phone="13800138000")
    person_with_account(rt, client, name="李四", phone="13900139000", seq=2)
    invalid = client.post(f"{API}/me/phone/sms-code", headers=h, json={"phone": "12345"})
    assert invalid.status_code == 422 and invalid.json()["code"] == "PHONE_INVALID"
    # Asking tells nothing: 202 as for any number.
    assert (
        client.post(
            f"{API}/me/phone/sms-code", headers=h, json={"phone": "13900139000"}
        ).status_code
        == 202
    )
    code = sms_lines(rt)[-1]["code"]
    taken = client.put(
        f"{API}/me/phone", headers=h, json={"phone": "13900139000", "sms_code": code}
    )
    assert taken.status_code == 409 and taken.json()["code"] == "PHONE_IN_USE"


def test_a_locked_payment_password_is_reset_only_after_the_step_up(
    rt: Runtime, client: TestClient
) -> None:
    person, _, h = person_with_account(rt, client, phone="13800138000")
    client.put(
        f"{API}/me/payment-password",
        headers=h,
        json={"password": PASSWORD, "new_payment_password": "135790"},
    )
    for _ in range(rt.settings.payment_max_failures):
        _verify(rt, person.id, "402957")
    assert _verify(rt, person.id, "135790") == "VERIFICATION_LOCKED"
    # A stolen session alone cannot do it: the code goes to the registry phone.
    assert client.post(f"{API}/me/payment-password/reset/sms-code", headers=h).status_code == 202
    message = sms_lines(rt)[-1]
    assert message["to"] == "13800138000" and "支付密码" in message["text"]
    weak = client.post(
        f"{API}/me/payment-password/reset",
        headers=h,
        json={"sms_code": message["code"], "new_payment_password": "111222"},
    )
    assert weak.status_code == 422 and weak.json()["code"] == "PAYMENT_PASSWORD_WEAK"
    ok = client.post(
        f"{API}/me/payment-password/reset",
        headers=h,
        json={"sms_code": message["code"], "new_payment_password": "402957"},
    )
    assert ok.status_code == 204, ok.text
    assert _verify(rt, person.id, "402957") is None  # the lock is lifted, the PIN new
    used = client.post(
        f"{API}/me/payment-password/reset",
        headers=h,
        json={"sms_code": message["code"], "new_payment_password": "503968"},
    )
    assert used.status_code == 409 and used.json()["code"] == "SMS_CODE_USED"


def test_a_face_check_is_a_step_up_too(rt: Runtime, client: TestClient) -> None:
    person, _, h = person_with_account(rt, client, phone="13800138000")
    bad = client.post(
        f"{API}/me/payment-password/reset",
        headers=h,
        json={"face_token": "not-a-face", "new_payment_password": "402957"},
    )
    assert bad.status_code == 403
    ok = client.post(
        f"{API}/me/payment-password/reset",
        headers=h,
        json={"face_token": simulated_face_token(person.id), "new_payment_password": "402957"},
    )
    assert ok.status_code == 204
    assert _verify(rt, person.id, "402957") is None


def test_codes_for_a_purpose_have_a_daily_cap(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    person_with_account(rt, client, phone="13800138000")
    answers = []
    for _ in range(rt.settings.sms_max_per_day + 1):
        h = login(client, "13800138000")  # a session outlives no more than 30 minutes
        r = client.post(f"{API}/me/payment-password/reset/sms-code", headers=h)
        answers.append(r.status_code)
        clock.advance(timedelta(minutes=20))
    assert answers[: rt.settings.sms_max_per_day] == [202] * rt.settings.sms_max_per_day
    assert answers[-1] == 429
