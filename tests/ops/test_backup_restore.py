"""The restore drill (docs/operations.md "Backups and a restore drill"): back the
embedded database up while the API serves writes, restore the copy into a new data
directory with the same key, start the service on it, and check that the ledger
reconciles, the audit chain verifies, and every person and link is there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from qinqing.entrypoints import demo
from qinqing.entrypoints.cli import app
from support import forkserver

DEMO_PHONE, DEMO_PASSWORD = "13800000001", "Demo2026pass"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data: Path) -> dict[str, str]:
    env = {**os.environ, "QINQING_DATA_DIR": str(data), "QINQING_ENV": "development"}
    for name in ("QINQING_DATABASE_URL", "QINQING_SECRET_KEY"):
        env.pop(name, None)
    return env


def _call(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - http to loopback
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@contextmanager
def _serving(data: Path, *extra: str) -> Iterator[int]:
    port = _free_port()
    proc = forkserver.start(["serve", "--port", str(port), *extra], _env(data), capture=False)
    try:
        for _ in range(600):  # until it answers (bounded; nothing timed is asserted)
            try:
                if _call(port, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                if proc.poll() is not None:
                    break
            time.sleep(0.2)
        assert _call(port, "GET", "/readyz")[0] == 200, "the service did not come up"
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as conn:
        return {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
            for table in ("persons", "family_links", "ledger_entries", "audit_log")
        }


def test_backup_under_load_then_restore_and_serve(tmp_path: Path) -> None:
    data, restored, copy = tmp_path / "data", tmp_path / "restored", tmp_path / "copy.sqlite3"
    writes: list[int] = []
    with _serving(data, "--demo") as port:
        stop = threading.Event()

        def busy() -> None:
            """Logins and voucher issues (token, voucher and audit rows) all along."""
            while not stop.is_set():
                status, body = _call(
                    port,
                    "POST",
                    "/api/v1/auth/login",
                    {"login": DEMO_PHONE, "password": DEMO_PASSWORD},
                )
                if status == 200:
                    writes.append(
                        _call(port, "POST", "/api/v1/vouchers", {}, body["access_token"])[0]
                    )

        writer = threading.Thread(target=busy)
        writer.start()
        try:
            while len(writes) < 3:
                time.sleep(0.05)
            made = CliRunner().invoke(app, ["db", "backup", str(copy), "--json"], env=_env(data))
            while len(writes) < 6:  # the API kept serving writes after the copy
                time.sleep(0.05)
        finally:
            stop.set()
            writer.join(60)
        assert made.exit_code == 0, made.output
        out = json.loads(made.stdout)
        assert out["backup"] == str(copy) and out["bytes"] == copy.stat().st_size
        assert out["key"] == str((data / "secret.key").resolve())
        source_counts = _counts(data / "qinqing.sqlite3")
    assert oct(copy.stat().st_mode & 0o777) == "0o600"

    # Restore: the copy as qinqing.sqlite3 in a new data directory, with the same key.
    restored.mkdir(mode=0o700)
    shutil.copy(copy, restored / "qinqing.sqlite3")
    shutil.copy(data / "secret.key", restored / "secret.key")
    counts = _counts(restored / "qinqing.sqlite3")
    assert counts["persons"] == source_counts["persons"] == len(demo.PEOPLE)
    assert counts["family_links"] == source_counts["family_links"]
    with _serving(restored) as port:
        status, body = _call(
            port, "POST", "/api/v1/auth/login", {"login": DEMO_PHONE, "password": DEMO_PASSWORD}
        )
        assert status == 200, body
        status, family = _call(port, "GET", "/api/v1/me/family", token=body["access_token"])
        assert status == 200 and len(family["as_holder"]) == 4
    runner = CliRunner()
    reconciled = runner.invoke(app, ["ledger", "reconcile", "--json"], env=_env(restored))
    assert reconciled.exit_code == 0 and json.loads(reconciled.stdout)["ok"] is True
    verified = runner.invoke(app, ["audit", "verify", "--json"], env=_env(restored))
    assert verified.exit_code == 0 and json.loads(verified.stdout)["status"] == "intact"


def test_a_backup_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(
        app, ["db", "backup", str(tmp_path / "c.sqlite3")], env=_env(tmp_path / "none")
    )
    assert missing.exit_code == 2 and "no database" in missing.output
    assert not (tmp_path / "none").exists()  # nothing created while refusing
    pg = runner.invoke(
        app,
        ["db", "backup", str(tmp_path / "c.sqlite3")],
        env={**_env(tmp_path), "QINQING_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x"},
    )
    assert pg.exit_code == 2 and "pg_dump" in pg.output
