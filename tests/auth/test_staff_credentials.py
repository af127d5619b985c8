"""Staff credentials: a password of at least 12 characters that is not a common one,
the TOTP second factor (required in production, once per code), and the operator's
`staff list`, `disable`, `reset-password` and `mfa` (docs/auth.md "Staff")."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from qinqing.audit.models import AuditEntry
from qinqing.auth import mfa
from qinqing.auth.models import StaffUser
from qinqing.auth.staff_passwords import check_staff_password, is_common
from qinqing.config import Env
from qinqing.entrypoints.app import create_app
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.entrypoints.cli import app
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_staff
from support.client import AppClient

GOOD = "Grassland-Horse-Tea-42"


def _env(rt: Runtime, **extra: str) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
        "QINQING_DATA_DIR": str(rt.settings.data_dir),
        "QINQING_ARGON2_TIME_COST": "1",
        "QINQING_ARGON2_MEMORY_KIB": "1024",
        "QINQING_ARGON2_PARALLELISM": "1",
        **extra,
    }


def _cli(rt: Runtime, *args: str, **env: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, list(args), env=_env(rt, **env))
    return r.exit_code, r.stdout if r.exit_code == 0 else r.output


def _login(client: TestClient, username: str, password: str, totp: str | None = None) -> dict:
    body = {"login": username, "password": password}
    if totp is not None:
        body["totp"] = totp
    r = client.post("/api/v1/auth/login", json=body)
    return {"status": r.status_code, **r.json()}


def _enrol(rt: Runtime, username: str) -> str:
    """`qinqing staff mfa USERNAME --json`; the secret as an authenticator reads it."""
    code, out = _cli(rt, "staff", "mfa", username, "--json")
    assert code == 0, out
    uri = json.loads(out)["otpauth_uri"]
    assert uri.startswith("otpauth://totp/Qinqing:")
    return parse_qs(urlparse(uri).query)["secret"][0]


# --- the password rules ---------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["password1", "Password2026!", "qwertyuiop12", "aaaaaaaaaaaa", "iloveyou1234"]
)
def test_common_or_short_staff_passwords_are_refused(password: str) -> None:
    with pytest.raises(DomainError) as refused:
        check_staff_password(password, "li.clerk")
    assert refused.value.code in ("STAFF_PASSWORD_LENGTH", "STAFF_PASSWORD_COMMON")


def test_a_password_containing_the_username_is_refused() -> None:
    with pytest.raises(DomainError, match="STAFF_PASSWORD_COMMON"):
        check_staff_password("li.clerk-Secure-77", "li.clerk")


def test_a_long_uncommon_passphrase_is_taken() -> None:
    check_staff_password(GOOD, "li.clerk")
    assert is_common("Password2026!") and not is_common(GOOD)


def test_the_review_finding_password1_for_an_admin_is_refused(rt: Runtime) -> None:
    code, out = _cli(
        rt,
        "staff",
        "add",
        "root.admin",
        "--role",
        "admin",
        "--region",
        "150600",
        QINQING_NEW_PASSWORD="password1",
    )
    assert code != 0 and "STAFF_PASSWORD_LENGTH" in out
    code, out = _cli(
        rt,
        "staff",
        "add",
        "root.admin",
        "--role",
        "admin",
        "--region",
        "150600",
        QINQING_NEW_PASSWORD="Password2026!",
    )
    assert code != 0 and "STAFF_PASSWORD_COMMON" in out
    with rt.db.unit_of_work() as s:
        assert s.execute(select(StaffUser)).first() is None


# --- the second factor ----------------------------------------------------------


def test_an_enrolled_staff_login_needs_the_current_code_once(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    add_staff(rt, "li.clerk", "clerk")
    secret = _enrol(rt, "li.clerk")
    assert _login(client, "li.clerk", STAFF_PASSWORD)["code"] == "TOTP_REQUIRED"
    wrong = str((int(mfa.code_at(secret, clock.now())) + 1) % 1_000_000).zfill(6)
    assert _login(client, "li.clerk", STAFF_PASSWORD, wrong)["code"] == "TOTP_INVALID"
    # A right code with a wrong password tells nothing about the code.
    now_code = mfa.code_at(secret, clock.now())
    assert _login(client, "li.clerk", "Wrong-password-99", now_code)["code"] == (
        "INVALID_CREDENTIALS"
    )
    ok = _login(client, "li.clerk", STAFF_PASSWORD, now_code)
    assert ok["status"] == 200 and ok["access_token"]
    # The same code again (seen over a shoulder) is refused; the next step's is taken.
    assert _login(client, "li.clerk", STAFF_PASSWORD, now_code)["code"] == "TOTP_INVALID"
    clock.advance(timedelta(seconds=30))
    assert (
        _login(client, "li.clerk", STAFF_PASSWORD, mfa.code_at(secret, clock.now()))["status"]
        == 200
    )


def test_a_code_within_one_step_of_drift_is_taken_but_not_two(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    add_staff(rt, "li.clerk", "clerk")
    secret = _enrol(rt, "li.clerk")
    stale = mfa.code_at(secret, clock.now() - timedelta(seconds=90))
    assert _login(client, "li.clerk", STAFF_PASSWORD, stale)["code"] == "TOTP_INVALID"
    behind = mfa.code_at(secret, clock.now() - timedelta(seconds=30))
    assert _login(client, "li.clerk", STAFF_PASSWORD, behind)["status"] == 200


def test_second_factor_failures_count_toward_the_login_lockout(
    rt: Runtime, client: TestClient
) -> None:
    add_staff(rt, "li.clerk", "clerk")
    _enrol(rt, "li.clerk")
    codes = [_login(client, "li.clerk", STAFF_PASSWORD)["code"] for _ in range(8)]
    assert codes[0] == "TOTP_REQUIRED"
    assert codes[-1] == "LOGIN_LOCKED"


def test_production_refuses_a_staff_login_without_a_second_factor(
    rt: Runtime, clock: FrozenClock
) -> None:
    add_staff(rt, "li.clerk", "clerk")
    prod = build_runtime(
        rt.settings.model_copy(update={"env": Env.production, "face_provider": "none"}),
        clock=clock,
        migrate=False,
    )
    try:
        with AppClient(create_app(prod), raise_server_exceptions=False) as c:
            refused = _login(c, "li.clerk", STAFF_PASSWORD)
            assert refused["status"] == 403 and refused["code"] == "STAFF_MFA_NOT_ENROLLED"
            secret = _enrol(rt, "li.clerk")
            ok = _login(c, "li.clerk", STAFF_PASSWORD, mfa.code_at(secret, clock.now()))
            assert ok["status"] == 200
    finally:
        prod.db.dispose()


def test_persons_never_need_a_second_factor(rt: Runtime, client: TestClient) -> None:
    from support.accounts import person_with_account

    person_with_account(rt, client)  # logs in with phone + password alone


def test_the_secret_is_stored_sealed(rt: Runtime) -> None:
    add_staff(rt, "li.clerk", "clerk")
    secret = _enrol(rt, "li.clerk")
    with rt.db.unit_of_work() as s:
        staff = s.execute(select(StaffUser)).scalar_one()
        assert staff.totp_cipher is not None and secret.encode() not in staff.totp_cipher
        assert rt.vault.decrypt(mfa.SECRET_KIND, staff.totp_cipher) == secret


# --- the operator's commands ----------------------------------------------------


def test_disable_ends_the_sessions_and_the_logins(rt: Runtime, client: TestClient) -> None:
    add_staff(rt, "li.clerk", "reviewer")
    token = _login(client, "li.clerk", STAFF_PASSWORD)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/review/unbind-requests", headers=headers).status_code == 200
    code, out = _cli(rt, "staff", "disable", "li.clerk")
    assert code == 0 and "1 session(s) ended" in out
    assert client.get("/api/v1/review/unbind-requests", headers=headers).status_code == 401
    assert _login(client, "li.clerk", STAFF_PASSWORD)["code"] == "INVALID_CREDENTIALS"
    code, out = _cli(rt, "staff", "disable", "no.such")
    assert code != 0 and "STAFF_NOT_FOUND" in out


def test_reset_password_replaces_it_and_ends_the_sessions(rt: Runtime, client: TestClient) -> None:
    add_staff(rt, "li.clerk", "reviewer")
    token = _login(client, "li.clerk", STAFF_PASSWORD)["access_token"]
    code, out = _cli(rt, "staff", "reset-password", "li.clerk", QINQING_NEW_PASSWORD="short")
    assert code != 0 and "STAFF_PASSWORD_LENGTH" in out
    assert _login(client, "li.clerk", STAFF_PASSWORD)["status"] == 200  # unchanged
    code, out = _cli(rt, "staff", "reset-password", "li.clerk", QINQING_NEW_PASSWORD=GOOD)
    assert code == 0, out
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/review/unbind-requests", headers=headers).status_code == 401
    assert _login(client, "li.clerk", STAFF_PASSWORD)["code"] == "INVALID_CREDENTIALS"
    assert _login(client, "li.clerk", GOOD)["status"] == 200


def test_list_shows_each_account_and_its_second_factor(rt: Runtime) -> None:
    add_staff(rt, "li.clerk", "clerk")
    add_staff(rt, "wang.review", "reviewer", "440100")
    _enrol(rt, "wang.review")
    _cli(rt, "staff", "disable", "li.clerk")
    code, out = _cli(rt, "staff", "list", "--json")
    assert code == 0, out
    rows = {r["username"]: r for r in json.loads(out)}
    assert rows["li.clerk"]["disabled"] and not rows["li.clerk"]["mfa"]
    assert rows["wang.review"]["mfa"] and rows["wang.review"]["region"] == "440100"
    code, out = _cli(rt, "staff", "list")
    assert code == 0 and "wang.review" in out and "TOTP" in out


def test_mfa_prints_a_qr_code_and_the_uri_and_is_audited(rt: Runtime) -> None:
    add_staff(rt, "li.clerk", "clerk")
    code, out = _cli(rt, "staff", "mfa", "li.clerk")
    assert code == 0, out
    assert "otpauth://totp/Qinqing:li.clerk?secret=" in out.replace("\n", "")
    assert "█" in out or "▀" in out  # the terminal QR code
    with rt.db.unit_of_work() as s:
        actions = set(s.execute(select(AuditEntry.action)).scalars())
    assert {"staff.add", "staff.mfa_enrol"} <= actions
