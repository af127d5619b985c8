"""``qinqing`` commands forked from one process that imported the CLI once.

Each browser module runs its own ``qinqing serve``. Started as ``python -m
qinqing``, every one of them imported the CLI, the app and their dependencies
again: about 1.3 s of CPU before it did anything, some 25 times per run. Here
one helper process per test worker imports them once, then forks a command for
each request: the child sets its environment and arguments and runs the same
``qinqing.entrypoints.cli.main`` that ``python -m qinqing`` runs.

The helper imports nothing but the modules: no runtime, no database, no thread,
so a fork starts from a clean process. The child's settings are read from its
own environment, after the fork, as they are at any start.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_HELPER = """
import json, os, signal, sys
from qinqing.entrypoints import cli, serve  # noqa: F401 (imported once for every fork)

# The kernel reaps the children; the test sees one end by its pid going away.
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
for line in sys.stdin:
    order = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setpgrp()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(order["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.clear()
        os.environ.update(order["env"])
        sys.argv = ["qinqing", *order["args"]]
        status = 0
        try:
            cli.main()
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback  # noqa: PLC0415 (the child's last words only)

            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)
    sys.stdout.write(f"{pid}\\n")
    sys.stdout.flush()
"""


class Forked:
    """A forked command, with the part of ``subprocess.Popen``'s interface the
    browser tests use (poll, terminate, kill, wait). It is not our child, so its
    exit status is not known: ``poll`` says only whether it is still running."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return -1
        return None

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"qinqing (pid {self.pid})", timeout or 0)
            time.sleep(0.05)
        return -1

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)


_helper: subprocess.Popen[str] | None = None


def _started() -> subprocess.Popen[str]:
    global _helper
    if _helper is None or _helper.poll() is not None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QINQING_")}
        _helper = subprocess.Popen(  # noqa: S603 (our own interpreter and code)
            [sys.executable, "-c", _HELPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        atexit.register(_helper.stdin.close)  # type: ignore[union-attr]
    return _helper


def fork_qinqing(args: list[str], env: dict[str, str], log: Path) -> Forked:
    """``qinqing *args`` with exactly ``env``, its output appended to ``log``."""
    helper = _started()
    assert helper.stdin is not None and helper.stdout is not None
    helper.stdin.write(json.dumps({"args": args, "env": env, "log": str(log)}) + "\n")
    helper.stdin.flush()
    answer = helper.stdout.readline()
    if not answer:
        raise RuntimeError("the qinqing fork helper ended")
    return Forked(int(answer))
