"""Who did it: the actor an audit entry names."""

from __future__ import annotations

import getpass
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # person | staff | client | operator | system
    id: str
    # app | wechat | counter | review | admin | bank | institution | collector | system
    channel: str


SYSTEM = Actor("system", "qinqing", "system")


def operator() -> Actor:
    """CLI work is audited like an API call, with channel ``admin`` (docs/guide.md §7)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor("operator", user[:64], "admin")
