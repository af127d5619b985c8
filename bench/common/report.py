"""How a benchmark says whether a target was reached."""

from __future__ import annotations


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
