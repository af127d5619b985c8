"""``qinqing db backup FILE``: a consistent copy of the embedded SQLite database while
the service runs (docs/operations.md "Backups and a restore drill").

SQLite's online backup API copies the database page by page through a read
transaction of its own, so writers may go on meanwhile and the copy is the
database as it was at one instant (WAL mode included). The copy is written
beside the target, checked (``PRAGMA integrity_check``), made private (0600) and
only then moved into place, so a half-written file never carries the name.

The copy holds personal data only encrypted: it is of no use without the vault
key, which is *not* in it (``secret.key`` in the data directory, or
``QINQING_SECRET_KEY``). Keep the key apart from the backups, and safe.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from qinqing.config import Settings

# Pages copied per step: small enough to let writers in between steps.
PAGES_PER_STEP = 256

Progress = Callable[[int, int], None]  # (pages copied, pages in all)


class BackupError(Exception):
    """The backup cannot be made; the message says why (and what to do instead)."""


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    bytes: int
    pages: int
    # Where the vault key is (never the key itself).
    key_source: str


def sqlite_path(settings: Settings) -> Path:
    """The embedded database's file, or :class:`BackupError` for another database."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise BackupError(
            "`db backup` copies the embedded SQLite database; this service uses "
            f"{url.get_backend_name()} — back PostgreSQL up with pg_dump (or a base backup "
            "and WAL archiving), see docs/operations.md"
        )
    return Path(url.database)


def key_source(settings: Settings) -> str:
    if settings.secret_key:
        return "QINQING_SECRET_KEY (the environment), not in the data directory"
    return str(settings.key_file.resolve())


def backup(settings: Settings, target: Path, progress: Progress | None = None) -> Backup:
    """Copy the live embedded database to ``target`` (which must not exist yet)."""
    source = sqlite_path(settings)
    if not source.is_file():
        raise BackupError(f"there is no database at {source} (QINQING_DATA_DIR)")
    target = target.expanduser()
    if target.exists():
        raise BackupError(f"{target} already exists; name a new file")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    # Read-write mode (never create): a WAL database is read through its shared memory.
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        dst = sqlite3.connect(partial)
        try:
            src.backup(
                dst,
                pages=PAGES_PER_STEP,
                progress=(lambda _status, left, total: progress(total - left, total))
                if progress
                else None,
            )
            [(verdict,)] = dst.execute("PRAGMA integrity_check").fetchall()
            if verdict != "ok":
                raise BackupError(f"the copy failed its integrity check ({verdict})")
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    with partial.open("rb+") as fh:
        os.fsync(fh.fileno())
    partial.replace(target)
    return Backup(target.resolve(), target.stat().st_size, pages, key_source(settings))
