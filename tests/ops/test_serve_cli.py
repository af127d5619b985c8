"""`qinqing serve`: the port range, flags shown as flags, demo logins that survive an
80-column terminal or a log file, `--json`, and `--demo --reset`.

`serve --demo --reset` works on the embedded SQLite default only (the reset refuses
any other database), so those cases need no PostgreSQL twin; `--demo` on a named
database runs on both. uvicorn is replaced by a recorder so nothing listens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qinqing.entrypoints import demo, serve
from qinqing.entrypoints.cli import app

FAST_HASHING = {
    "QINQING_ARGON2_TIME_COST": "1",
    "QINQING_ARGON2_MEMORY_KIB": "1024",
    "QINQING_ARGON2_PARALLELISM": "1",
}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(serve.uvicorn, "run", lambda *a, **kw: calls.append(kw))
    return calls


def _env(data_dir: Path, **extra: str) -> dict[str, str | None]:
    # An 80-column terminal, the embedded default, development mode.
    return {
        "COLUMNS": "80",
        "QINQING_DATA_DIR": str(data_dir),
        "QINQING_DATABASE_URL": None,
        "QINQING_ENV": None,
        "QINQING_FACE_PROVIDER": None,
        "QINQING_SECRET_KEY": None,
        **FAST_HASHING,
        **extra,
    }


@pytest.mark.parametrize(
    ("port", "says"),
    [
        ("0", "greater than or equal to 1"),
        ("-1", "greater than or equal to 1"),
        ("65536", "less than or equal to 65535"),
        ("99999", "less than or equal to 65535"),
    ],
)
def test_a_port_outside_1_to_65535_is_refused(
    port: str, says: str, tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    r = CliRunner().invoke(app, ["serve", "--port", port], env=_env(tmp_path))
    assert r.exit_code == 2
    assert "Invalid value for '--port'" in r.output and says in r.output
    assert served == []  # nothing listens, on that port or a wrapped-around one


def test_the_highest_port_is_taken(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    r = CliRunner().invoke(app, ["serve", "--port", "65535"], env=_env(tmp_path))
    assert r.exit_code == 0, r.output
    assert served[0]["port"] == 65535


def test_help_shows_flags_as_flags() -> None:
    r = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "80"})
    assert r.exit_code == 0
    assert "<bool>" not in r.output
    demo_line = next(line for line in r.output.splitlines() if line.strip().startswith("--demo"))
    assert demo_line.split()[1] == "load"  # the help text, no value placeholder
    assert "1<=x<=65535" in r.output


def test_demo_logins_are_one_per_line_and_never_split(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    r = CliRunner().invoke(app, ["serve", "--demo"], env=_env(tmp_path))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    for record in demo.login_records():
        # The login and its secret share one line, each whole.
        [line] = [ln for ln in lines if f" {record['login']} " in ln]
        assert f" {record['secret']} " in line
    assert served and served[0]["port"] == 8000


def test_demo_json_is_the_whole_stdout(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    r = CliRunner().invoke(app, ["serve", "--demo", "--json"], env=_env(tmp_path))
    assert r.exit_code == 0, r.output
    document = json.loads(r.stdout)
    assert document["created"] is True
    kinds = {entry["kind"] for entry in document["logins"]}
    assert kinds == {"person", "staff", "client", "webhook"}
    hook = next(e for e in document["logins"] if e["kind"] == "webhook")
    assert hook["secret"].startswith("whsec_")
    # Every person row is a phone login, never the webhook's URL.
    assert all(e["login"].isdigit() for e in document["logins"] if e["kind"] == "person")
    bank = next(e for e in document["logins"] if e["login"] == "qq_demo_bank")
    assert bank["secret"] == "demo-bank-secret-2026"
    assert "Qinqing on http://127.0.0.1:8000" in r.stderr


def test_demo_reset_starts_afresh(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["serve", "--demo", "--json"], env=_env(tmp_path)).exit_code == 0
    key_before = (tmp_path / "secret.key").read_text()
    (tmp_path / "notes.txt").write_text("not ours")

    again = runner.invoke(app, ["serve", "--demo", "--json"], env=_env(tmp_path))
    assert json.loads(again.stdout)["created"] is False  # already loaded

    reset = runner.invoke(app, ["serve", "--demo", "--reset", "--json"], env=_env(tmp_path))
    assert reset.exit_code == 0, reset.output
    assert json.loads(reset.stdout)["created"] is True
    assert "removed qinqing.sqlite3" in reset.stderr
    assert (tmp_path / "secret.key").read_text() != key_before
    assert (tmp_path / "notes.txt").read_text() == "not ours"  # only the service's own files


@pytest.mark.parametrize(
    "extra",
    [
        {"QINQING_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test"},
        {"QINQING_ENV": "production"},
        {"QINQING_ENV": "test"},
    ],
)
def test_reset_is_refused_outside_the_embedded_development_default(
    extra: dict[str, str], tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    (tmp_path / "qinqing.sqlite3").write_bytes(b"keep me")
    r = CliRunner().invoke(app, ["serve", "--demo", "--reset"], env=_env(tmp_path, **extra))
    assert r.exit_code == 1
    assert "--reset" in r.output
    assert (tmp_path / "qinqing.sqlite3").read_bytes() == b"keep me"
    assert served == []


def test_reset_and_json_need_demo(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    r = CliRunner().invoke(app, ["serve", "--reset"], env=_env(tmp_path))
    assert r.exit_code == 1 and "--demo" in r.output
    assert served == []


def test_demo_on_a_named_database_needs_an_explicit_development_mode(
    database_url: str, tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    """A named database alone means production: `--demo` refuses to load its published
    logins into it, unless QINQING_ENV=development says it is a throw-away one; an
    explicit QINQING_ENV=production refuses it too."""
    env = _env(tmp_path, QINQING_DATABASE_URL=database_url)
    r = CliRunner().invoke(app, ["serve", "--demo", "--json"], env=env)
    assert r.exit_code == 1 and "QINQING_DATABASE_URL" in r.output
    assert served == []
    env = {**env, "QINQING_ENV": "development"}
    r = CliRunner().invoke(app, ["serve", "--demo", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["created"] is True
    assert len(served) == 1
    r = CliRunner().invoke(app, ["serve", "--demo"], env={**env, "QINQING_ENV": "production"})
    assert r.exit_code != 0
    assert len(served) == 1  # nothing served in production mode


def test_the_demo_checks_faces_with_the_simulated_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apps: list[Any] = []
    monkeypatch.setattr(serve.uvicorn, "run", lambda app, **kw: apps.append(app))
    r = CliRunner().invoke(app, ["serve", "--demo", "--json"], env=_env(tmp_path))
    assert r.exit_code == 0, r.output
    [served_app] = apps
    assert served_app.state.runtime.settings.face_provider == "simulated"
    named = _env(tmp_path, QINQING_FACE_PROVIDER="none")
    r = CliRunner().invoke(app, ["serve", "--demo", "--json"], env=named)
    assert r.exit_code == 0, r.output
    assert apps[-1].state.runtime.settings.face_provider == "none"
