"""``python -m bench.payments``: set up, then interleaved rounds of (a) (b) [(c)] (d) [(e) (f)],
then the report.

See the package's docstring and docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.common.database import libpq_url, psql, reset_schema
from bench.payments.baseline import drop_pgbench, init_pgbench, measure_pgbench
from bench.payments.cpu import Cluster
from bench.payments.figures import Figures
from bench.payments.load import measure_batches, measure_single
from bench.payments.options import parse_args
from bench.payments.report import line, report, write_json
from bench.payments.server import start_server, token
from bench.payments.setup import read_pairs, seed
from qinqing.config import Env, Settings
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.identity.vault import generate_key
from qinqing.kit.db import make_engine


def main() -> int:
    args = parse_args()
    for tool in ("pgbench", "wrk", "psql"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            raise SystemExit(f"{tool} is needed (apt-get install -y {tool})")

    db = libpq_url(args.database_url)
    cluster = Cluster.find(db)
    out = Path(tempfile.mkdtemp(prefix="qinqing-bench-"))
    reset_schema(args.database_url)
    key = generate_key()
    settings = Settings(
        database_url=args.database_url, env=Env.test, secret_key=key, data_dir=out / "data"
    )
    rt = build_runtime(settings, migrate=False)
    t0 = time.perf_counter()
    client_id = seed(rt, args.families, out / "families.csv")
    rt.db.dispose()
    families = out / "families.csv"
    pairs = read_pairs(families)
    single = Side(args.database_url, [cluster], families, pairs, client_id)
    print(f"seeded {args.families} funded families in {time.perf_counter() - t0:.1f} s")
    init_pgbench(db, args.pgbench_scale)
    psql(db, "ANALYZE")

    citus = setup_citus(args, key, out) if args.citus_url else None

    servers = {
        "b": start_server(
            args.database_url,
            key,
            args.port,
            args.workers,
            out / "server.log",
            {},
            args.server,
        )
    }
    if args.grouped:
        servers["c"] = start_server(
            args.database_url,
            key,
            args.port + 1,
            args.workers,
            out / "server-grouped.log",
            {"QINQING_GROUP_COMMIT": "on"},
            args.server,
        )
    if citus is not None:
        servers["e"] = start_server(
            citus.url,
            key,
            args.port + 2,
            args.workers,
            out / "server-citus.log",
            {"QINQING_DISTRIBUTED": "citus"},
            args.server,
        )
    rounds: list[dict[str, Figures]] = []
    try:
        for name, srv in servers.items():  # first requests pay for imports and connections
            side = citus if name == "e" and citus is not None else single
            tok = token(srv.port, side.client_id)
            measure_single(name, srv, tok, side.families, max(int(args.warmup), 1), side.nodes)
            measure_batches(srv, tok, side.pairs, 0, 1, 100, side.nodes, f"warm{name}")
        print(
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
            f"pgbench scale {args.pgbench_scale}; server: {args.server} --workers {args.workers}; "
            f"batches: {args.batch_clients} clients x {args.batch_size} operations; "
            f"autovacuum {cluster.autovacuum} (ANALYZE and CHECKPOINT before each round)"
        )
        for i in range(args.repeat):
            print(f"round {i + 1}/{args.repeat}")
            # Stands in for autovacuum's analyze (off on some clusters): without it the
            # growing payments table keeps its empty-table plans (see docs/benchmarks.md).
            psql(db, "ANALYZE")
            # The seeding, pgbench's own set-up and the previous round leave dirty
            # buffers; a checkpoint flushing them in the middle of a 10 s window
            # stalls every commit's WAL flush (seen here as p99 spikes of 40-140 ms
            # while the server log showed a checkpoint's sync phase). Each round
            # starts from a clean checkpoint instead, as pgbench runs usually do.
            psql(db, "CHECKPOINT")
            row: dict[str, Figures] = {}
            row["a"] = measure_pgbench(db, cluster, args.seconds, out / f"pgbench-{i}")
            print(line(row["a"]), flush=True)
            for name, srv in servers.items():
                if name == "e":
                    continue  # the Citus server: after (d)
                tok = token(srv.port, client_id)
                row[name] = measure_single(name, srv, tok, families, args.seconds, cluster)
                print(line(row[name]), flush=True)
            srv = servers["b"]
            tok = token(srv.port, client_id)
            row["d"] = measure_batches(
                srv, tok, pairs, args.seconds, args.batch_clients, args.batch_size, cluster, f"r{i}"
            )
            print(line(row["d"]), flush=True)
            if citus is not None:
                for node in citus.nodes:
                    psql(node.conninfo, "CHECKPOINT")
                srv = servers["e"]
                tok = token(srv.port, citus.client_id)
                row["e"] = measure_single("e", srv, tok, citus.families, args.seconds, citus.nodes)
                print(line(row["e"]), flush=True)
                row["f"] = measure_batches(
                    srv,
                    tok,
                    citus.pairs,
                    args.seconds,
                    args.batch_clients,
                    args.batch_size,
                    citus.nodes,
                    f"c{i}",
                    name="f",
                )
                print(line(row["f"]), flush=True)
            rounds.append(row)
    finally:
        for srv in servers.values():
            srv.proc.terminate()
            srv.proc.wait(10)
        drop_pgbench(db)
    summary = report(rounds, args.grouped, args)
    print(f"server log: {out / 'server.log'}")
    if args.json:
        write_json(args.json, args, summary, rounds)
        print(f"figures written to {args.json}")
    return 1 if summary["failed"] else 0


CITUS_SCHEMA = "qinqing_bench"


@dataclass
class Side:
    """One database a run measures (the single node, or a Citus coordinator): where
    it is, whose CPU counts, its families and the institution client that pays."""

    url: str
    nodes: list[Cluster]  # every node whose CPU counts
    families: Path
    pairs: list[tuple[str, str]]
    client_id: str


def setup_citus(args: argparse.Namespace, key: str, out: Path) -> Side:
    """Wipes the coordinator's database, migrates and places every table (as
    ``QINQING_DISTRIBUTED=citus qinqing db upgrade``), seeds the families."""
    nodes = Cluster.find_citus(libpq_url(args.citus_url))
    # A schema of the run's own, not public: the coordinator refuses to make public
    # again once dropped ("could not open relation").
    engine = make_engine(args.citus_url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {CITUS_SCHEMA} CASCADE"))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {CITUS_SCHEMA}"))
    engine.dispose()
    url = (
        make_url(args.citus_url)
        .update_query_dict({"options": f"-csearch_path={CITUS_SCHEMA}"})
        .render_as_string(hide_password=False)
    )
    settings = Settings(
        database_url=url,
        distributed="citus",
        env=Env.test,
        secret_key=key,
        data_dir=out / "citus-data",
    )
    t0 = time.perf_counter()
    rt = build_runtime(settings)
    families = out / "citus-families.csv"
    client_id = seed(rt, args.citus_families, families)
    rt.db.dispose()
    psql(libpq_url(url), "ANALYZE")
    print(
        f"Citus: {len(nodes)} nodes; seeded {args.citus_families} funded families "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return Side(url, nodes, families, read_pairs(families), client_id)


if __name__ == "__main__":
    sys.exit(main())
