"""`qinqing serve --workers N` keeps our access-log format (uvicorn's own access line
used to come back in each worker process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support.databases import TEST_KEY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_workers_log_our_access_line_only(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "QINQING_DATA_DIR": str(tmp_path / "data"),
        "QINQING_ENV": "development",
        "QINQING_SECRET_KEY": TEST_KEY,
        "QINQING_LOG_JSON": "false",
    }
    env.pop("QINQING_DATABASE_URL", None)
    # Started as an operator starts it, `python -m qinqing` from nothing (the other
    # operations tests fork the CLI from a helper that imported it already): one test
    # at least must see the whole command start, imports included.
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "qinqing", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        rid = None
        for _ in range(600):  # until a worker answers (bounded; no timing asserted)
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(
                        f"http://127.0.0.1:{port}/healthz", headers={"X-Request-Id": "probe-1"}
                    ),
                    timeout=5,
                ) as r:
                    rid = r.headers["X-Request-Id"]
                    break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        assert rid == "probe-1", "server did not come up"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    ours = [line for line in err.splitlines() if "GET /healthz 200" in line]
    assert ours and all("[probe-1]" in line and "qinqing.http" in line for line in ours)
    assert '"GET /healthz HTTP/1.1"' not in err
