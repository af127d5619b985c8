"""What a newcomer met (issue "Operable in production", part 6): a command run from
another folder silently made a second, empty data directory and printed
credentials the running demo refused. Now it says so."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from qinqing.entrypoints.cli import app


def _env(data: Path) -> dict[str, str]:
    env = {**os.environ, "QINQING_DATA_DIR": str(data), "QINQING_ENV": "development"}
    for name in ("QINQING_DATABASE_URL", "QINQING_SECRET_KEY"):
        env.pop(name, None)
    return env


def test_a_command_that_creates_a_data_directory_says_so(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere" / "qinqing-data"
    add = ["clients", "add", "Test", "--kind", "institution", "--region", "150600", "--json"]
    first = CliRunner().invoke(app, add, env=_env(data))
    assert first.exit_code == 0, first.output
    assert "creating a new data directory" in first.stderr and str(data) in first.stderr
    assert "client_id" in first.stdout  # the JSON on stdout stays clean
    second = CliRunner().invoke(app, [*add[:2], "Test2", *add[3:]], env=_env(data))
    assert second.exit_code == 0 and "creating a new data directory" not in second.stderr
