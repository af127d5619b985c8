"""A load generator run as a child process: its output and the CPU it used."""

from __future__ import annotations

import os
import subprocess
import tempfile


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float]:
    """Runs a load generator to its end: its output and CPU seconds (its rusage)."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{text}")
    return text, ru.ru_utime + ru.ru_stime
