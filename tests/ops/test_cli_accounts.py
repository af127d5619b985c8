"""`qinqing staff add` and `qinqing clients add`: passwords never as arguments,
secrets shown once and stored hashed, every operator action audited (channel admin)."""

from __future__ import annotations

import json

from sqlalchemy import select
from typer.testing import CliRunner

from qinqing.audit.models import AuditEntry
from qinqing.auth.models import ApiClient, StaffUser
from qinqing.entrypoints.cli import app
from qinqing.runtime import Runtime


def _env(rt: Runtime, **extra: str) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
        "QINQING_ARGON2_TIME_COST": "1",
        "QINQING_ARGON2_MEMORY_KIB": "1024",
        "QINQING_ARGON2_PARALLELISM": "1",
        **extra,
    }


def test_staff_add_takes_password_from_environment(rt: Runtime) -> None:
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["staff", "add", "li.clerk", "--role", "clerk", "--region", "150600", "--json"],
        env=_env(rt, QINQING_NEW_PASSWORD="Counter2026x"),
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["role"] == "clerk"
    with rt.db.unit_of_work() as s:
        staff = s.execute(select(StaffUser)).scalar_one()
        assert staff.password_hash.startswith("$argon2id$")
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "staff.add")).scalar_one()
        assert entry.channel == "admin"


def test_staff_add_without_password_fails_clearly(rt: Runtime) -> None:
    r = CliRunner().invoke(
        app, ["staff", "add", "li.clerk", "--role", "clerk", "--region", "150600"], env=_env(rt)
    )
    assert r.exit_code != 0
    assert "QINQING_NEW_PASSWORD" in r.output


def test_staff_add_refuses_bad_role_and_region(rt: Runtime) -> None:
    env = _env(rt, QINQING_NEW_PASSWORD="Counter2026x")
    r = CliRunner().invoke(
        app, ["staff", "add", "x.one", "--role", "boss", "--region", "150600"], env=env
    )
    assert r.exit_code == 1 and "ROLE_INVALID" in r.output
    r = CliRunner().invoke(
        app, ["staff", "add", "x.one", "--role", "clerk", "--region", "999999"], env=env
    )
    assert r.exit_code == 1 and "REGION_NOT_FOUND" in r.output


def test_clients_add_shows_secret_once_and_stores_it_hashed(rt: Runtime) -> None:
    r = CliRunner().invoke(
        app,
        [
            "clients",
            "add",
            "某银行",
            "--kind",
            "bank",
            "--region",
            "150600",
            "--bank-code",
            "ICBC",
            "--json",
        ],
        env=_env(rt),
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"client_id", "client_secret"}
    with rt.db.unit_of_work() as s:
        client = s.execute(select(ApiClient)).scalar_one()
        assert client.id == out["client_id"] and client.bank_code == "ICBC"
        assert out["client_secret"] not in client.secret_hash
        assert client.scopes == "bank-links family"


def test_a_bank_added_without_a_code_gets_one_of_its_own(rt: Runtime) -> None:
    """`--bank-code` is optional: a bank without one is a bank of its own, and its
    customers' links carry that code."""
    runner = CliRunner()
    base = ["clients", "add", "某银行", "--kind", "bank", "--region", "150600"]
    first = runner.invoke(app, [*base, "--json"], env=_env(rt))
    assert first.exit_code == 0, first.output
    assert set(json.loads(first.stdout)) == {"client_id", "client_secret"}
    second = runner.invoke(app, base, env=_env(rt))
    assert second.exit_code == 0, second.output
    with rt.db.unit_of_work() as s:
        codes = {c.id: c.bank_code for c in s.execute(select(ApiClient)).scalars()}
    first_id = json.loads(first.stdout)["client_id"]
    code = codes[first_id]
    assert code is not None and code.startswith("QQ") and code.isalnum() and code.isupper()
    [other] = [c for cid, c in codes.items() if cid != first_id]
    assert other != code  # two banks, two codes
    assert f"bank_code:     {other}" in second.output


def test_a_bank_code_is_read_in_capitals_and_refused_when_malformed(rt: Runtime) -> None:
    runner = CliRunner()
    base = ["clients", "add", "某银行", "--kind", "bank", "--region", "150600", "--json"]
    r = runner.invoke(app, [*base, "--bank-code", "icbc"], env=_env(rt))
    assert r.exit_code == 0, r.output
    with rt.db.unit_of_work() as s:
        assert s.execute(select(ApiClient.bank_code)).scalar_one() == "ICBC"
    r = runner.invoke(app, [*base, "--bank-code", "中国工商银行"], env=_env(rt))
    assert r.exit_code == 1 and "BANK_CODE_REQUIRED" in r.output
