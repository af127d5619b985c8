"""The baseline: pgbench TPC-B-like, 8 clients, on the same cluster as the service."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bench.common.child import run_child
from bench.common.database import psql
from bench.payments.cpu import Cluster, Window
from bench.payments.figures import Figures, percentile

PGBENCH_TABLES = "pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers"


def init_pgbench(db: str, scale: int) -> None:
    """pgbench's tables, next to the service's in the same database."""
    subprocess.run(["pgbench", "-i", "-q", "-s", str(scale), db], check=True, capture_output=True)


def drop_pgbench(db: str) -> None:
    psql(db, f"DROP TABLE IF EXISTS {PGBENCH_TABLES}")


def measure_pgbench(db: str, cluster: Cluster, seconds: int, logdir: Path) -> Figures:
    # What pgbench does before a run unless -n, done here outside the window.
    psql(db, "VACUUM pgbench_branches, pgbench_tellers", "TRUNCATE pgbench_history")
    logdir.mkdir()
    window = Window(cluster, None).start()
    out, load_s = run_child(
        [
            "pgbench",
            "-n",
            "-c",
            "8",
            "-j",
            "2",
            "--log",
            f"--log-prefix={logdir / 'tx'}",
            "-T",
            str(seconds),
            db,
        ]
    )
    cpu = window.stop()

    def grab(pattern: str) -> str:
        m = re.search(pattern, out)
        if not m:
            raise SystemExit(f"could not read pgbench output:\n{out}")
        return m.group(1)

    tps = float(grab(r"tps = ([\d.]+) \(without initial connection time\)"))
    done = int(grab(r"number of transactions actually processed: (\d+)"))
    m = re.search(r"number of failed transactions: (\d+)", out)
    # Per-transaction log lines: client, transaction, latency in µs, ...
    lat = [
        int(parts[2]) / 1000
        for f in logdir.iterdir()
        for parts in (ln.split() for ln in f.read_text().splitlines())
        if len(parts) > 2 and parts[2].isdigit()
    ]
    return Figures(
        name="a",
        rate=tps,
        units=done,
        p50_ms=percentile(lat, 50),
        p99_ms=percentile(lat, 99),
        failed=int(m.group(1)) if m else 0,
        seconds=cpu["wall_s"],
        cpu_ms={**cpu, "server": 0.0, "load": load_s * 1000},
        detail={"latency_average_ms": float(grab(r"latency average = ([\d.]+) ms"))},
    )
