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
