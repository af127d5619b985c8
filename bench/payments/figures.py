"""One measurement window's figures, and the percentile they are read with."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PARTS = ("server", "postgres", "load")


@dataclass
class Figures:
    """One measurement window."""

    name: str
    rate: float  # per second: pgbench transactions, or payments (authorize+settle)
    units: int  # what CPU is divided by: transactions, or payments
    p50_ms: float
    p99_ms: float
    failed: int  # failed transactions / requests (non-2xx, socket errors) / refused ops
    seconds: float
    cpu_ms: dict[str, float]  # server, postgres, load; plus the window's side figures
    ops_per_s: float | None = None  # API operations (authorize or settle) per second
    detail: dict[str, Any] = field(default_factory=dict)

    def per_unit(self, part: str) -> float:
        if not self.units:
            return math.nan
        if part == "total":
            return sum(self.cpu_ms[p] for p in PARTS) / self.units
        return self.cpu_ms[part] / self.units

    def other_load(self) -> float:
        """Busy CPU of the machine in the window not in the three parts, in % of a core."""
        busy = self.cpu_ms["machine_busy"] - sum(self.cpu_ms[p] for p in PARTS)
        return max(busy, 0.0) / (self.cpu_ms["wall_s"] * 10)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    return s[max(math.ceil(p / 100 * len(s)) - 1, 0)]
