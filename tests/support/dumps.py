"""The whole database as text, the way a reader of a dump would see it: for tests
that grep every table for personal data or tokens in clear."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from typing import Any

from sqlalchemy import inspect, text

from qinqing.runtime import Runtime

_B64 = re.compile(r"^[A-Za-z0-9+/_-]{16,}={0,2}$")


def _texts(value: Any) -> list[str]:
    """A value as every text a reader of a dump could get from it: bytes as Latin-1,
    JSON re-serialised, and whatever base64 decodes to (clear text merely encoded
    would otherwise slip through)."""
    if value is None:
        return []
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        return [raw.decode("latin-1"), raw.hex()]
    if isinstance(value, dict | list):
        return [json.dumps(value, ensure_ascii=False)] + [
            t for v in (value.values() if isinstance(value, dict) else value) for t in _texts(v)
        ]
    out = [str(value)]
    if isinstance(value, str) and _B64.match(value):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(binascii.Error, ValueError):
                out.append(decode(value + "=" * (-len(value) % 4)).decode("latin-1"))
    return out


def database_text(rt: Runtime) -> tuple[str, dict[str, int]]:
    """Every row of every table the database has (listed from the database itself,
    not from our models), as text; and the row count of each table."""
    out: list[str] = []
    counts: dict[str, int] = {}
    tables = inspect(rt.db.engine).get_table_names()
    with rt.db.unit_of_work() as s:
        for table in tables:
            # Names come from the database's own catalogue, not from input.
            rows = s.execute(text(f'SELECT * FROM "{table}"')).all()  # noqa: S608
            counts[table] = len(rows)
            for row in rows:
                for value in row:
                    out.extend(_texts(value))
    return "\n".join(out), counts
