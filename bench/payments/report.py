"""The report: each window's line, the medians and ratios to pgbench, targets, JSON."""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common.report import verdict
from bench.payments.figures import PARTS, Figures

# Issue targets, checked against the medians.
TARGET_SINGLE_RATIO = 0.3  # single payments/s >= 0.3 x pgbench tps
TARGET_SINGLE_CPU_MS = 2.3  # CPU per payment, all processes together
TARGET_SINGLE_P99_MS = 30.0  # at 8 connections
TARGET_BATCH_RATIO = 3.0  # batch payments/s >= 3 x pgbench tps
TARGET_CITUS_CPU_RATIO = 2.0  # Citus CPU per single payment <= 2 x the single node's
TARGET_CITUS_BATCH_RATIO = 1.0  # Citus batch operations/s >= 1 x pgbench tps

LABELS = {
    "a": "(a) pgbench TPC-B-like, 8 clients",
    "b": "(b) single payments, 8 connections",
    "c": "(c) grouped single payments",
    "d": "(d) batches of 1000 operations",
    "e": "(e) Citus: single payments",
    "f": "(f) Citus: batches",
}


def rate_text(name: str, rate: float, ops_per_s: float | None) -> str:
    if name == "a":
        return f"{rate:,.0f} tps"
    return f"{rate:,.0f} pay/s ({ops_per_s or 0:,.0f} op/s)"


def cpu_text(per: dict[str, float], server: bool) -> str:
    srv = f"{per['server']:6.2f}" if server else "     -"
    return f"{srv} {per['postgres']:6.2f} {per['load']:6.2f} {per['total']:6.2f}"


def line(f: Figures) -> str:
    return (
        f"  {LABELS[f.name]:<36} {rate_text(f.name, f.rate, f.ops_per_s):>26}  "
        f"p50 {f.p50_ms:6.1f}  p99 {f.p99_ms:6.1f} ms  CPU ms/op srv/pg/load/total "
        f"{cpu_text({p: f.per_unit(p) for p in (*PARTS, 'total')}, f.name != 'a')}  failed {f.failed}"
    )


def median_of(rounds: list[dict[str, Figures]], name: str) -> dict[str, Any]:
    runs = [r[name] for r in rounds]
    med = statistics.median
    out: dict[str, Any] = {
        "rate": med(f.rate for f in runs),
        "p50_ms": med(f.p50_ms for f in runs),
        "p99_ms": med(f.p99_ms for f in runs),
        "cpu_ms_per_op": {p: med(f.per_unit(p) for f in runs) for p in (*PARTS, "total")},
        # Ratios are taken within each round (pgbench next to it), then the median.
        "ratio_rate": med(r[name].rate / r["a"].rate for r in rounds),
        "ratio_cpu_per_op": med(
            r[name].per_unit("total") / r["a"].per_unit("total") for r in rounds
        ),
        "failed": sum(f.failed for f in runs),
        "postgres_other_databases_ms": med(f.cpu_ms["postgres_other_databases"] for f in runs),
        "other_load_pct_of_core": med(f.other_load() for f in runs),
        "wal_bytes_per_op": med(f.cpu_ms["wal_bytes"] / f.units for f in runs if f.units),
    }
    if name in ("e", "f"):
        # Every node counted, against the single node's same figure in the same round.
        single = "b" if name == "e" else "d"
        out["ratio_cpu_vs_single_node"] = med(
            r[name].per_unit("total") / r[single].per_unit("total") for r in rounds
        )
    if name != "a":
        out["ops_per_s"] = med(f.ops_per_s or 0.0 for f in runs)
        out["ratio_ops"] = med((r[name].ops_per_s or 0.0) / r["a"].rate for r in rounds)
    return out


def targets(medians: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in ("b", "c"):
        if name not in medians:
            continue
        m = medians[name]
        out += [
            {
                "figure": name,
                "target": f"payments/s >= {TARGET_SINGLE_RATIO} x pgbench tps",
                "value": f"{m['ratio_rate']:.2f} x",
                "met": m["ratio_rate"] >= TARGET_SINGLE_RATIO,
            },
            {
                "figure": name,
                "target": f"CPU per payment <= {TARGET_SINGLE_CPU_MS} ms (all processes)",
                "value": f"{m['cpu_ms_per_op']['total']:.2f} ms",
                "met": m["cpu_ms_per_op"]["total"] <= TARGET_SINGLE_CPU_MS,
            },
            {
                "figure": name,
                "target": f"p99 < {TARGET_SINGLE_P99_MS:.0f} ms at 8 connections",
                "value": f"{m['p99_ms']:.1f} ms",
                "met": m["p99_ms"] < TARGET_SINGLE_P99_MS,
            },
        ]
    if "e" in medians:
        e, f = medians["e"], medians["f"]
        out += [
            {
                "figure": "e",
                "target": f"Citus CPU per payment <= {TARGET_CITUS_CPU_RATIO:.0f} x (b)'s",
                "value": f"{e['ratio_cpu_vs_single_node']:.2f} x "
                f"({e['cpu_ms_per_op']['total']:.2f} ms)",
                "met": e["ratio_cpu_vs_single_node"] <= TARGET_CITUS_CPU_RATIO,
            },
            {
                "figure": "f",
                "target": f"Citus batch op/s >= {TARGET_CITUS_BATCH_RATIO:.0f} x pgbench tps",
                "value": f"{f['ratio_ops']:.2f} x",
                "met": f["ratio_ops"] >= TARGET_CITUS_BATCH_RATIO,
            },
        ]
    m = medians["d"]
    out.append(
        {
            "figure": "d",
            "target": f"batch payments/s >= {TARGET_BATCH_RATIO:.0f} x pgbench tps",
            "value": f"{m['ratio_rate']:.2f} x ({m['ratio_ops']:.2f} x in operations/s)",
            "met": m["ratio_rate"] >= TARGET_BATCH_RATIO,
        }
    )
    return out


def report(
    rounds: list[dict[str, Figures]], grouped: bool, args: argparse.Namespace
) -> dict[str, Any]:
    names = [n for n in "abcdef" if n in rounds[0]]
    medians = {n: median_of(rounds, n) for n in names}
    print(
        f"\nmedians of {len(rounds)} round(s), {args.seconds} s each; CPU in ms per op "
        "(pgbench: per transaction; b/c/d: per payment = authorize+settle)"
    )
    head = (
        f"  {'measurement':<36} {'throughput':>26}  {'p50 ms':>7} {'p99 ms':>7}  "
        f"{'server':>6} {'pg':>6} {'load':>6} {'total':>6}  {'x tput':>6} {'x CPU/op':>8}"
    )
    print(head)
    for n in names:
        m = medians[n]
        print(
            f"  {LABELS[n]:<36} {rate_text(n, m['rate'], m.get('ops_per_s')):>26}  "
            f"{m['p50_ms']:7.1f} {m['p99_ms']:7.1f}  "
            f"{cpu_text(m['cpu_ms_per_op'], n != 'a')}  "
            f"{m['ratio_rate']:6.2f} {m['ratio_cpu_per_op']:8.2f}"
        )
        if n == "d":
            print("      (d) latency is per batch request; b/c per HTTP request")
        if n in ("e", "f"):
            print(
                f"      ({n}) every node's CPU counted: "
                f"{m['ratio_cpu_vs_single_node']:.2f} x the single node's CPU per payment"
            )
    if not grouped:
        print(
            "  grouped: not measured (pass --grouped for (c): a second server with "
            "QINQING_GROUP_COMMIT=on)"
        )
    print(
        "WAL per op (pgbench: per transaction; b/c/d: per payment; the whole cluster's): "
        + ", ".join(f"({n}) {medians[n]['wal_bytes_per_op']:,.0f} B" for n in names)
    )
    checks = targets(medians)
    print("targets (national-scale issue):")
    for t in checks:
        print(f"  ({t['figure']}) {t['target']:<48} {t['value']:<36} {verdict(t['met'])}")
    print(
        "noise: other busy CPU on the machine during the windows (median), % of a core: "
        + ", ".join(f"({n}) {medians[n]['other_load_pct_of_core']:.0f}" for n in names)
        + "; other databases' backends excluded from pg: "
        + ", ".join(f"({n}) {medians[n]['postgres_other_databases_ms']:.0f} ms" for n in names)
    )
    failures = [(i + 1, f) for i, r in enumerate(rounds) for f in r.values() if f.failed]
    if failures:
        print("FAILURES — figures of these windows include failed work:")
        for i, f in failures:
            print(f"  round {i}, ({f.name}): {f.failed} failed; {failure_detail(f)}")
    else:
        print(
            "failures: none ("
            + ", ".join(f"({n}) {sum(failure_base(r[n]) for r in rounds):,}" for n in names)
            + " pgbench transactions / HTTP requests / batch operations)"
        )
    return {"medians": medians, "targets": checks, "failed": sum(f.failed for _, f in failures)}


def failure_base(f: Figures) -> int:
    if f.name == "a":
        return f.units
    if f.name in ("d", "f"):
        return int(f.detail["operations"])
    return int(f.detail["requests"])


def failure_detail(f: Figures) -> str:
    d = f.detail
    if f.name == "a":
        return "failed pgbench transactions"
    if f.name in ("d", "f"):
        return (
            f"{d['failed_requests']} failed batch requests {d['problems']}, "
            f"{d['refused_operations']} refused operations"
        )
    return f"{d['failed']} non-2xx/unexpected responses, {d['socket_errors']} socket errors"


def write_json(
    path: Path,
    args: argparse.Namespace,
    summary: dict[str, Any],
    rounds: list[dict[str, Figures]],
) -> None:
    path.write_text(
        json.dumps(
            {
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "cores": os.cpu_count(),
                **summary,
                "rounds": [{n: asdict(f) for n, f in r.items()} for r in rounds],
            },
            indent=2,
        )
    )
