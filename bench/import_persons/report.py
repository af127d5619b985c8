"""The printed figures of an import run, and its target (1,000,000 rows < 120 s)."""

from __future__ import annotations

import os

from bench.common.report import verdict
from qinqing.persons.importer import ImportReport

TARGET_SECONDS = 120.0


def print_report(rows: int, seconds: float, report: ImportReport) -> None:
    rate = rows / seconds if seconds else float("inf")
    # The target is for 1,000,000 rows; smaller runs are held to the same rate.
    target = TARGET_SECONDS * rows / 1_000_000
    met = seconds < target
    print(f"rows:     {rows}")
    print(f"seconds:  {seconds:.1f}")
    print(f"rows/s:   {rate:,.0f}")
    print(f"taken:    {report.taken}")
    print(f"refused:  {len(report.refused)}")
    print(f"cores:    {os.cpu_count()}")
    print(
        f"target:   {verdict(met)} ({seconds:.1f} s, target {target:.1f} s = 120 s per 1,000,000 rows)"
    )
