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

The operations tests start the CLI as a process of its own too (``serve``, the
worker, ``webhooks deliver``) to send it signals and read what it prints:
:func:`start` and :func:`run` fork those here as well, with what they need of
``subprocess.Popen`` and ``subprocess.run``: the exit status, which the child
writes down as it exits (the helper is its parent, not the test), and its output
in files read as pipes are, line by line while it runs.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_HELPER = """
import json, os, signal, sys
from qinqing.entrypoints import cli, serve  # noqa: F401 (imported once for every fork)

# Where each child's exit status is to be written, by pid (none for the browser
# tests' servers). The helper is their parent: it reaps them as they end.
statuses = {}


def reap(*_):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        path = statuses.pop(pid, None)
        if path:
            with open(path + ".part", "w") as f:
                f.write(str(os.waitstatus_to_exitcode(status)))
            os.replace(path + ".part", path)


signal.signal(signal.SIGCHLD, reap)
for line in sys.stdin:
    order = json.loads(line)
    # No reaping between the fork and noting where the child's status goes.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        os.setpgrp()
        null = os.open(os.devnull, os.O_RDONLY)
        out, err = (
            os.open(order[name], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            for name in ("stdout", "stderr")
        )
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        if order["cwd"]:
            os.chdir(order["cwd"])
        os.environ.clear()
        os.environ.update(order["env"])
        sys.argv = ["qinqing", *order["args"]]
        # From here on, what `python -m qinqing` does: its exit code, its traceback,
        # and at its end the interpreter's own (threads joined, exit hooks, flushes).
        cli.main()
        sys.exit(0)
    if order["status"]:
        statuses[pid] = order["status"]
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
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
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"qinqing (pid {self.pid})", timeout or 0)
            time.sleep(0.02)
        return code

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


def _fork(
    args: list[str],
    env: dict[str, str],
    *,
    stdout: Path,
    stderr: Path,
    status: Path | None = None,
    cwd: Path | None = None,
) -> int:
    helper = _started()
    assert helper.stdin is not None and helper.stdout is not None
    order = {
        "args": args,
        "env": env,
        "stdout": str(stdout),
        "stderr": str(stderr),
        "status": str(status) if status else None,
        "cwd": str(cwd) if cwd else None,
    }
    helper.stdin.write(json.dumps(order) + "\n")
    helper.stdin.flush()
    answer = helper.stdout.readline()
    if not answer:
        raise RuntimeError("the qinqing fork helper ended")
    return int(answer)


def fork_qinqing(args: list[str], env: dict[str, str], log: Path) -> Forked:
    """``qinqing *args`` with exactly ``env``, its output appended to ``log``."""
    return Forked(_fork(args, env, stdout=log, stderr=log))


# Where the commands' output and exit statuses are written: one folder per test process.
_OUTPUT: list[Path] = []


def _output_dir() -> Path:
    if not _OUTPUT:
        shm = Path("/dev/shm")
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        _OUTPUT.append(Path(tempfile.mkdtemp(prefix=f"qinqing-runs-{os.getpid()}-", dir=base)))
        atexit.register(shutil.rmtree, _OUTPUT[0], ignore_errors=True)
    return _OUTPUT[0]


class _Output:
    """A command's stdout or stderr as ``Popen`` gives a text pipe: iterated line by
    line as the command writes it (ending when it has exited and all is read), or
    read whole once it has exited. (No file is held open between reads: a test
    may drop the process without closing anything.)"""

    def __init__(self, path: Path, proc: ForkedProcess) -> None:
        self._path = path
        self._proc = proc
        self._offset = 0
        self._pending = b""

    def _more(self) -> bytes:
        with self._path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        return data

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while b"\n" not in self._pending:
            ended = self._proc.poll() is not None
            self._pending += self._more()  # after the exit was seen: all it wrote
            if b"\n" in self._pending:
                break
            if ended:
                if not self._pending:
                    raise StopIteration
                line, self._pending = self._pending, b""
                return line.decode("utf-8", "replace")
            time.sleep(0.02)
        line, _, self._pending = self._pending.partition(b"\n")
        return (line + b"\n").decode("utf-8", "replace")

    def read(self) -> str:
        data, self._pending = self._pending + self._more(), b""
        return data.decode("utf-8", "replace")


class ForkedProcess(Forked):
    """``qinqing *args`` forked (:func:`start`): what the tests use of
    ``subprocess.Popen`` in text mode, exit status included (negative: the signal
    that ended it, as with ``Popen``)."""

    def __init__(self, args: list[str], env: dict[str, str], *, capture: bool, cwd: Path | None):
        folder = Path(tempfile.mkdtemp(dir=_output_dir()))
        self.args = ["qinqing", *args]
        self.returncode: int | None = None
        self._status = folder / "status"
        out = err = Path(os.devnull)
        if capture:
            out, err = folder / "stdout", folder / "stderr"
            out.touch()
            err.touch()
        super().__init__(_fork(args, env, stdout=out, stderr=err, status=self._status, cwd=cwd))
        self.stdout = _Output(out, self) if capture else None
        self.stderr = _Output(err, self) if capture else None

    def poll(self) -> int | None:
        if self.returncode is None and super().poll() is not None:
            # Reaped: the helper writes its status at once (a moment to wait at most).
            for _ in range(500):
                if self._status.exists():
                    self.returncode = int(self._status.read_text())
                    break
                time.sleep(0.01)
            else:
                self.returncode = -1
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            self._signal(signal.Signals(sig))

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Wait for the end; what it wrote that was not read yet."""
        self.wait(timeout)
        return tuple(o.read() if o else None for o in (self.stdout, self.stderr))  # type: ignore[return-value]

    def __enter__(self) -> ForkedProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.wait()


def start(
    args: list[str], env: dict[str, str], *, capture: bool = True, cwd: Path | None = None
) -> ForkedProcess:
    """``qinqing *args`` with exactly ``env``, started; its output kept unless not
    ``capture`` (``stdout=stderr=DEVNULL``)."""
    return ForkedProcess(args, env, capture=capture, cwd=cwd)


def run(
    args: list[str], env: dict[str, str], *, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``qinqing *args`` to its end, as ``subprocess.run(capture_output=True,
    text=True)`` would run it."""
    with start(args, env, cwd=cwd) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode is not None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
