"""The service under load: ``qinqing serve`` as a child process, and a token for its client."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.payments.setup import SECRET


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


def command(server: str, port: int, workers: int) -> list[str]:
    """How to start the service: ``qinqing serve``, or the same app under Granian."""
    if server == "granian":
        granian = Path(sys.executable).with_name("granian")
        if not granian.exists():
            raise SystemExit("--server granian: install it first (pip install granian)")
        return [
            str(granian),
            "--interface",
            "asgi",
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--no-ws",
            "bench.payments.granian_app:app",
        ]
    return [
        sys.executable,
        "-m",
        "qinqing",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def start_server(
    url: str,
    key: str,
    port: int,
    workers: int,
    log: Path,
    extra_env: dict[str, str],
    server: str = "uvicorn",
) -> Server:
    env = {
        **os.environ,
        "QINQING_DATABASE_URL": url,
        "QINQING_SECRET_KEY": key,
        "QINQING_ENV": "production",
        "QINQING_FACE_PROVIDER": "none",
        "QINQING_LOG_JSON": "1",
        **extra_env,
    }
    proc = subprocess.Popen(
        command(server, port, workers),
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return Server(proc, port, log)
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start; see {log}")


def token(port: int, client_id: str) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port)
    body = f"grant_type=client_credentials&client_id={client_id}&client_secret={SECRET}"
    c.request(
        "POST", "/api/v1/auth/token", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    return str(json.loads(c.getresponse().read())["access_token"])
