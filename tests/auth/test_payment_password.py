"""Payment password: set, verify, 5 failures lock it for 3 hours, even across restarts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.auth import service
from qinqing.auth.models import PersonAccount
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from support.accounts import PASSWORD, person_with_account

API = "/api/v1"


def _set(client: TestClient, headers: dict[str, str], pin: str, password: str = PASSWORD) -> int:
    r = client.put(
        f"{API}/me/payment-password",
        headers=headers,
        json={"password": password, "new_payment_password": pin},
    )
    return r.status_code


def _verify(rt: Runtime, person_id: uuid.UUID, pin: str) -> str | None:
    """One verification attempt in its own unit of work; the error code or None."""
    try:
        with rt.db.unit_of_work() as s:
            acct = s.execute(
                select(PersonAccount).where(PersonAccount.person_id == person_id).with_for_update()
            ).scalar_one()
            service.verify_payment_password(s, rt, acct, pin, now=rt.clock.now())
    except DomainError as exc:
        return exc.code
    return None


def test_set_payment_password_rules(rt: Runtime, client: TestClient) -> None:
    _, _, headers = person_with_account(rt, client)
    assert _set(client, headers, "12345") == 422
    assert _set(client, headers, "111111") == 422
    assert _set(client, headers, "123456") == 422
    assert _set(client, headers, "135790", password="WrongPass1") == 401
    assert _set(client, headers, "135790") == 204
    assert client.get(f"{API}/me", headers=headers).json()["payment_password_set"] is True


def test_five_failures_lock_for_three_hours_and_survive_restart(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    person, _, headers = person_with_account(rt, client)
    assert _set(client, headers, "135790") == 204
    assert _verify(rt, person.id, "135790") is None
    for _ in range(4):
        assert _verify(rt, person.id, "000001") == "VERIFICATION_FAILED"
    # A restart between the 4th and 5th failure does not reset the count.
    rt2 = build_runtime(rt.settings, clock=clock, migrate=False)
    assert _verify(rt2, person.id, "000001") == "VERIFICATION_LOCKED"
    # Locked: even the right password is refused, in yet another runtime.
    rt3 = build_runtime(rt.settings, clock=clock, migrate=False)
    assert _verify(rt3, person.id, "135790") == "VERIFICATION_LOCKED"
    me = client.get(f"{API}/me", headers=headers).json()
    assert me["payment_password_locked_until"] is not None
    clock.advance(timedelta(hours=3) - timedelta(seconds=1))
    assert _verify(rt3, person.id, "135790") == "VERIFICATION_LOCKED"
    clock.advance(timedelta(seconds=2))
    assert _verify(rt3, person.id, "135790") is None
    rt2.db.dispose()
    rt3.db.dispose()


def test_success_resets_the_failure_count(rt: Runtime, client: TestClient) -> None:
    person, _, headers = person_with_account(rt, client)
    assert _set(client, headers, "135790") == 204
    for _ in range(4):
        assert _verify(rt, person.id, "000001") == "VERIFICATION_FAILED"
    assert _verify(rt, person.id, "135790") is None
    for _ in range(4):
        assert _verify(rt, person.id, "000001") == "VERIFICATION_FAILED"


@pytest.mark.parametrize("pin", ["", "abcdef", "1234567"])
def test_malformed_attempt_counts_as_failure(rt: Runtime, client: TestClient, pin: str) -> None:
    person, _, headers = person_with_account(rt, client)
    assert _set(client, headers, "135790") == 204
    assert _verify(rt, person.id, pin) == "VERIFICATION_FAILED"


# --- the review's findings (accounts issue) ---------------------------------------


def _put(client: TestClient, headers: dict[str, str], **body: str) -> tuple[int, str | None]:
    r = client.put(f"{API}/me/payment-password", headers=headers, json=body)
    return r.status_code, (r.json().get("code") if r.content else None)


@pytest.mark.parametrize("pin", ["111222", "121212", "000001", "123123", "112233", "789012"])
def test_easy_payment_passwords_are_refused(rt: Runtime, client: TestClient, pin: str) -> None:
    _, _, headers = person_with_account(rt, client)
    assert _put(client, headers, password=PASSWORD, new_payment_password=pin) == (
        422,
        "PAYMENT_PASSWORD_WEAK",
    )


def test_the_birth_date_is_refused_as_a_payment_password(rt: Runtime, client: TestClient) -> None:
    from datetime import date

    from support.accounts import add_person, login, register

    person, number = add_person(rt, name="李明", phone="13700137000", seq=7)
    register(client, number, "李明", "13700137000")
    headers = login(client, "13700137000")
    born: date = person.birth_date
    yymmdd = f"{born.year % 100:02d}{born.month:02d}{born.day:02d}"
    for pin in (yymmdd, f"{born.day:02d}{born.month:02d}{born.year % 100:02d}"):
        assert _put(client, headers, password=PASSWORD, new_payment_password=pin)[1] == (
            "PAYMENT_PASSWORD_WEAK"
        )
    assert _put(client, headers, password=PASSWORD, new_payment_password="402957")[0] == 204


def test_a_change_needs_the_current_payment_password_not_the_login_password(
    rt: Runtime, client: TestClient
) -> None:
    _, _, headers = person_with_account(rt, client)
    assert _put(client, headers, new_payment_password="135790") == (
        422,
        "PAYMENT_PASSWORD_PROOF_REQUIRED",
    )
    assert _put(client, headers, payment_password="135790", new_payment_password="402957") == (
        409,
        "PAYMENT_PASSWORD_NOT_SET",
    )
    assert _put(client, headers, password=PASSWORD, new_payment_password="135790")[0] == 204
    # Set: the login password no longer changes it.
    assert _put(client, headers, password=PASSWORD, new_payment_password="402957") == (
        409,
        "PAYMENT_PASSWORD_ALREADY_SET",
    )
    assert _put(client, headers, payment_password="135790", new_payment_password="402957")[0] == (
        204
    )
    assert _put(client, headers, payment_password="135790", new_payment_password="135790") == (
        403,
        "VERIFICATION_FAILED",
    )


def test_a_lockout_is_never_cleared_by_a_change(rt: Runtime, client: TestClient) -> None:
    """The review: a stolen token reset the payment password with the login password
    and so cleared the lockout. Now a change goes through the lock."""
    person, _, headers = person_with_account(rt, client)
    assert _put(client, headers, password=PASSWORD, new_payment_password="135790")[0] == 204
    for _ in range(rt.settings.payment_max_failures):
        _verify(rt, person.id, "402957")
    assert _verify(rt, person.id, "135790") == "VERIFICATION_LOCKED"
    assert _put(client, headers, payment_password="135790", new_payment_password="402957") == (
        423,
        "VERIFICATION_LOCKED",
    )
    assert _put(client, headers, password=PASSWORD, new_payment_password="402957")[1] == (
        "PAYMENT_PASSWORD_ALREADY_SET"
    )
    assert _verify(rt, person.id, "135790") == "VERIFICATION_LOCKED"


def test_wrong_login_passwords_here_count_toward_the_login_throttle(
    rt: Runtime, client: TestClient
) -> None:
    """The review: 12 wrong login passwords on this call gave 12 × 401, never 429."""
    _, _, headers = person_with_account(rt, client)
    codes = [
        _put(client, headers, password="Wrong-pass-1", new_payment_password="135790")[1]
        for _ in range(12)
    ]
    assert codes[0] == "INVALID_CREDENTIALS"
    assert "LOGIN_LOCKED" in codes
    # And the login itself is throttled by them too.
    r = client.post(f"{API}/auth/login", json={"login": "13800138000", "password": PASSWORD})
    assert r.status_code == 429
