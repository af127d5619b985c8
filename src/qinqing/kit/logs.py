"""Structured logs with a request id; personal data never reaches them (docs/guide.md §7).

Callers log ids, codes and counts only. As a second line of defence a filter
redacts anything shaped like an ID number, a mobile number or a bearer token
from every record before it is written.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_PII = [
    (re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"), "[id-number]"),
    (re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)"), "[phone]"),
    (re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [token]"),
    (re.compile(r"(?<!\d)\d{12,19}(?!\d)"), "[number]"),
]


# Opaque ids (canonical UUIDs) are kept whole: their hex groups can hold digit runs
# shaped like a phone or a long number, and an id mangled in a log cannot be traced.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _redact_plain(text: str) -> str:
    for pattern, repl in _PII:
        text = pattern.sub(repl, text)
    return text


def redact(text: str) -> str:
    out, last = [], 0
    for m in _UUID.finditer(text):
        out.append(_redact_plain(text[last : m.start()]))
        out.append(m.group())
        last = m.end()
    out.append(_redact_plain(text[last:]))
    return "".join(out)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            # A traceback's exception text may quote input; formatters reuse exc_text.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record, not the
    stream of the moment ``configure`` ran (which a test runner or a daemonizing
    parent may have closed since)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(json_lines: bool, level: int = logging.INFO) -> None:
    handler = _StderrHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # The access line is ours (middleware.RequestContext). uvicorn writes its own
    # whenever its access logger has a handler anywhere up the tree, so it gets
    # none: otherwise each --workers child, configured after uvicorn, would log
    # uvicorn's default format too.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
