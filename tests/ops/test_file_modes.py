"""The embedded default keeps its data private: the data directory 0700, the SQLite
file (and its WAL companions) and the key file 0600, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

from qinqing.config import Env, Settings
from qinqing.entrypoints.bootstrap import build_runtime
from support.accounts import add_person


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_data_dir_database_and_key_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "qinqing-data"
    settings = Settings(
        database_url=None,
        env=Env.development,
        data_dir=data,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    old = os.umask(0o022)  # the usual default, which would give 0755 and 0644
    try:
        rt = build_runtime(settings)
        add_person(rt)  # a write, so the WAL files exist too
        assert _mode(data) == 0o700
        assert _mode(settings.key_file) == 0o600
        files = sorted(p.name for p in data.iterdir())
        assert "qinqing.sqlite3" in files
        for name in files:
            assert _mode(data / name) == 0o600, name
        rt.db.dispose()
    finally:
        os.umask(old)


def test_the_sms_sink_makes_a_private_data_dir_too(tmp_path: Path) -> None:
    """On PostgreSQL nothing else may have made the data directory before the simulated
    SMS sink writes its first code: it makes it 0700 as well (the review saw 0755)."""
    from qinqing.auth.sms import SimulatedSmsProvider

    data = tmp_path / "pg-deployment" / "qinqing-data"
    old = os.umask(0o022)
    try:
        SimulatedSmsProvider(data).send_code("13800000000", "123456", "code 123456")
    finally:
        os.umask(old)
    assert _mode(data) == 0o700
    assert _mode(data / "simulated-sms.jsonl") == 0o600
