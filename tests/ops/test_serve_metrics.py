"""Real processes: `serve --workers 2`, `worker --once` and a CLI job share one metrics
directory, so every scrape shows one consistent set; `serve` drains the requests under
way on SIGTERM within its grace period (docs/operations.md "Metrics", "Stopping
cleanly")."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from support import forkserver
from support.databases import TEST_KEY
from support.forkserver import ForkedProcess

TOKEN = "scrape-token-for-processes"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "QINQING_DATA_DIR": str(tmp_path / "data"),
        "QINQING_ENV": "development",
        "QINQING_SECRET_KEY": TEST_KEY,
        "QINQING_LOG_JSON": "false",
        "QINQING_METRICS_DIR": str(tmp_path / "metrics"),
        "QINQING_METRICS_TOKEN": TOKEN,
        **extra,
    }
    env.pop("QINQING_DATABASE_URL", None)
    return env


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310 - our own server
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextmanager
def _serving(env: dict[str, str], *args: str) -> Iterator[tuple[ForkedProcess, int]]:
    port = _free_port()
    proc = forkserver.start(["serve", "--port", str(port), *args], env)
    try:
        for _ in range(600):  # until a worker answers (bounded; no timing asserted)
            try:
                if _get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        else:
            raise AssertionError("server did not come up")
        assert proc.poll() is None, proc.communicate()[1]
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def _run_cli(env: dict[str, str], *args: str) -> None:
    done = forkserver.run(list(args), env, timeout=120)
    assert done.returncode == 0, done.stderr


def test_serve_workers_the_worker_and_cli_jobs_report_in_one_scrape(tmp_path: Path) -> None:
    env = _env(tmp_path)
    metrics_dir = tmp_path / "metrics"
    # A process that ended before this serve started left its counters behind.
    stale = subprocess.run(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from qinqing.kit import metrics; "
            f"metrics.record_to(Path({str(metrics_dir)!r})); metrics.binding('STALE_OUTCOME')",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stale.returncode == 0, stale.stderr
    assert list(metrics_dir.glob("counter_*.db"))

    with _serving(env, "--workers", "2") as (_, port):
        for _ in range(20):  # new connections: the kernel spreads them over the workers
            assert _get(port, "/readyz")[0] == 200
        _run_cli(env, "worker", "--once")

        scrapes = []
        for _ in range(8):
            status, text = _get(port, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
            assert status == 200, text
            scrapes.append(text)
        assert _get(port, "/metrics")[0] == 404

    counts = {
        _value(t, "qinqing_http_requests_total", route="/readyz", method="GET", status="200")
        for t in scrapes
    }
    assert counts == {20.0}, "every scrape, whichever worker answers it, sees all 20"
    passes = {
        _value(t, "qinqing_worker_pass_seconds_count", job="deliver_webhooks") for t in scrapes
    }
    assert passes == {1.0}, "the worker's pass (another process) is in the scrape"
    assert all("STALE_OUTCOME" not in t for t in scrapes), "an ended process was not cleared"
    assert all(_value(t, "qinqing_outbox_depth", outbox="webhooks") == 0 for t in scrapes)


def _start_request(port: int, body: bytes) -> socket.socket:
    """A POST whose headers and half its body have arrived: a request under way."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        "POST /api/v1/auth/login HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    conn.sendall(head.encode() + body[: len(body) // 2])
    return conn


def _read_all(conn: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := conn.recv(65536):
            out += chunk
    except OSError:
        pass
    return out


def test_sigterm_lets_a_request_under_way_finish_then_exits(tmp_path: Path) -> None:
    body = b'{"login": "nobody-at-all", "password": "not-the-password-1"}'
    with _serving(_env(tmp_path, QINQING_SHUTDOWN_GRACE_SECONDS="30")) as (proc, port):
        conn = _start_request(port, body)
        time.sleep(0.5)  # the server has the headers: the request is under way
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the stop has begun ...
        assert proc.poll() is None, "serve left before the request under way finished"
        conn.sendall(body[len(body) // 2 :])  # ... and the request still completes
        answer = _read_all(conn)
        conn.close()
        _, err = proc.communicate(timeout=60)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"INVALID_CREDENTIALS" in answer or b"problem+json" in answer
    # uvicorn re-raises the signal once it has shut down: the supervisor sees a stop by
    # SIGTERM, which systemd and container runtimes count as clean.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err and "Traceback" not in err


def test_sigterm_waits_no_longer_than_the_grace_period(tmp_path: Path) -> None:
    body = b'{"login": "nobody-at-all", "password": "not-the-password-1"}'
    with _serving(_env(tmp_path, QINQING_SHUTDOWN_GRACE_SECONDS="2")) as (proc, port):
        conn = _start_request(port, body)  # and never finished
        time.sleep(0.5)
        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        waited = time.monotonic() - stopped
        answer = _read_all(conn)
        conn.close()
    assert 1.5 <= waited < 30, waited
    assert not answer.startswith(b"HTTP/1.1 2"), "a request cut off is never answered as done"


def test_the_worker_makes_a_private_metrics_directory_a_cli_job_only_joins_one(
    tmp_path: Path,
) -> None:
    """By default the directory is `metrics/` in the data directory: the worker (like
    serve) makes it, owner-only like the data directory; a CLI job on a host without
    one leaves none behind."""
    env = _env(tmp_path)
    del env["QINQING_METRICS_DIR"]
    data = tmp_path / "data"
    _run_cli(env, "db", "upgrade")
    assert data.is_dir() and not (data / "metrics").exists()

    other = _env(tmp_path / "other")
    del other["QINQING_METRICS_DIR"]
    _run_cli(other, "worker", "--once")
    made = tmp_path / "other" / "data" / "metrics"
    assert made.is_dir()
    assert made.stat().st_mode & 0o777 == 0o700
    assert made.parent.stat().st_mode & 0o777 == 0o700
    # The worker's counts outlive it, for serve's scrape; its live gauges do not.
    assert list(made.glob("histogram_*.db")) and not list(made.glob("gauge_livesum_*.db"))
