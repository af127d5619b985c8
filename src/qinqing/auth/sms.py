"""Text messages through the provider that ``QINQING_SMS_PROVIDER`` names.

``simulated`` (the default outside production) writes each message as one JSON
line ``{"to": phone, "code": code, "text": text}`` to ``simulated-sms.jsonl``
in the data directory, for the demo and the tests; production refuses it at
start, like the simulated face provider. ``none`` sends nothing: registration
by SMS code is then unavailable and persons register with a face check.
A real gateway is one more class with the same ``send_code`` method.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Protocol

from qinqing.config import Settings
from qinqing.kit.db import private_dir

SIMULATED_FILE = "simulated-sms.jsonl"


class SmsProvider(Protocol):
    name: str

    def send_code(self, to: str, code: str, text: str) -> None:
        """Send ``text`` (which contains ``code``) to the mainland mobile ``to``."""


class SimulatedSmsProvider:
    """Demo/test only: appends each message to a JSON-lines file (mode 0600)."""

    name = "simulated"
    _lock = threading.Lock()

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / SIMULATED_FILE

    def send_code(self, to: str, code: str, text: str) -> None:
        line = json.dumps({"to": to, "code": code, "text": text}, ensure_ascii=False) + "\n"
        # The data directory holds the key and the database: 0700 whoever makes it first.
        private_dir(self.path.parent)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.write(line)


KNOWN_PROVIDERS = ("none", "simulated")


def sms_provider(settings: Settings) -> SmsProvider | None:
    """The configured provider, or None when SMS is off (or refused in production)."""
    name = settings.effective_sms_provider
    if name == "simulated" and not settings.is_production:
        return SimulatedSmsProvider(settings.data_dir)
    return None
