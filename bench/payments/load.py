"""The HTTP load phases: single payments driven by wrk, and batches from client threads."""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from bench.common.child import run_child
from bench.payments.cpu import Nodes, Window
from bench.payments.figures import Figures, percentile
from bench.payments.server import Server

WRK_SCRIPT = Path(__file__).with_name("payments.lua")


def measure_single(
    name: str, server: Server, tok: str, families: Path, seconds: int, cluster: Nodes
) -> Figures:
    env = {**os.environ, "QQ_TOKEN": tok, "QQ_FAMILIES": str(families)}
    window = Window(cluster, server.proc.pid).start()
    out, load_s = run_child(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            "8",
            "--timeout",
            "10s",
            "-d",
            f"{seconds}s",
            "-s",
            str(WRK_SCRIPT),
            f"http://127.0.0.1:{server.port}",
        ],
        env=env,
    )
    cpu = window.stop()
    line = next((ln for ln in out.splitlines() if ln.startswith("QQ_RESULT ")), None)
    if line is None:
        raise SystemExit(f"could not read wrk output:\n{out}")
    r: dict[str, Any] = json.loads(line.removeprefix("QQ_RESULT "))
    duration = r["duration_us"] / 1e6
    return Figures(
        name=name,
        rate=r["settled"] / duration,
        units=r["settled"],
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        failed=r["failed"] + r["socket_errors"],
        seconds=duration,
        cpu_ms={**cpu, "load": load_s * 1000},
        ops_per_s=(r["authorized"] + r["settled"]) / duration,
        detail=r,
    )


def measure_batches(
    server: Server,
    tok: str,
    pairs: list[tuple[str, str]],
    seconds: float,
    clients: int,
    size: int,
    cluster: Nodes,
    tag: str,
    name: str = "d",
) -> Figures:
    """Each client alternates a batch of authorizations and a batch settling them."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tok}"}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    ok_ops, settled, refused, failed_req = ([0] * clients for _ in range(4))
    cpu_s = [0.0] * clients
    problems: dict[str, int] = {}  # status / error kind -> count (never the bodies)

    def post(n: int, conn: http.client.HTTPConnection, ops: list[dict[str, Any]]) -> list[Any]:
        body = json.dumps({"operations": ops})
        t = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/payments/batch", body, headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            failed_req[n] += 1
            problems[type(exc).__name__] = problems.get(type(exc).__name__, 0) + 1
            return []
        latencies[n].append((time.perf_counter() - t) * 1000)
        if resp.status != 200:
            failed_req[n] += 1
            problems[f"HTTP {resp.status}"] = problems.get(f"HTTP {resp.status}", 0) + 1
            return []
        return list(json.loads(raw)["results"])

    def worker(n: int) -> None:
        started = time.thread_time()
        rnd = random.Random(f"{tag}-{n}")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        k = 0
        while time.perf_counter() < deadline:
            ops = []
            for _ in range(size):
                h, m = rnd.choice(pairs)
                k += 1
                ops.append(
                    {
                        "op": "authorize",
                        "holder_id_number": h,
                        "member_id_number": m,
                        "amount_fen": 100,
                        "reference": f"{tag}-{n}-{k}",
                    }
                )
            res = post(n, conn, ops)
            ids = [r["payment_id"] for r in res if r["ok"]]
            refused[n] += len(res) - len(ids)
            ok_ops[n] += len(ids)
            if ids:
                res = post(
                    n, conn, [{"op": "settle", "payment_id": p, "amount_fen": 100} for p in ids]
                )
                done = sum(bool(r["ok"]) for r in res)
                refused[n] += len(res) - done
                ok_ops[n] += done
                settled[n] += done
        cpu_s[n] = time.thread_time() - started

    window = Window(cluster, server.proc.pid).start()
    started = time.perf_counter()
    deadline = started + seconds
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu = window.stop()
    lat = [x for per in latencies for x in per]
    return Figures(
        name=name,
        rate=sum(settled) / elapsed,
        units=sum(settled),
        p50_ms=percentile(lat, 50),
        p99_ms=percentile(lat, 99),
        failed=sum(failed_req) + sum(refused),
        seconds=elapsed,
        cpu_ms={**cpu, "load": sum(cpu_s) * 1000},
        ops_per_s=sum(ok_ops) / elapsed,
        detail={
            "batches": len(lat),
            "operations": sum(ok_ops),
            "failed_requests": sum(failed_req),
            "refused_operations": sum(refused),
            "problems": problems,
        },
    )
