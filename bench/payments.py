"""Payments benchmark (issue 4): pgbench baseline, single payments over HTTP, batches.

Against one PostgreSQL database, in the same run:

  (a) ``pgbench`` TPC-B-like TPS with 8 clients: the baseline;
  (b) single payments over HTTP (authorize then settle) from 8 concurrent
      connections (``wrk`` with ``bench/payments.lua``): payments/s, p50/p99;
  (c) ``POST /payments/batch`` with 1000-operation batches: operations/s.

It prints each figure and its ratio to (a). The database named is WIPED.

    .venv/bin/python bench/payments.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/qinqing_bench
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from import_persons import AREA_CODES, reset_schema
from qinqing.audit.service import Actor
from qinqing.auth import service as auth
from qinqing.config import Env, Settings
from qinqing.family.models import FamilyLink
from qinqing.family.views import pair_key
from qinqing.identity.ric import parse, with_check_digit
from qinqing.identity.vault import generate_key
from qinqing.ledger.accounts import funding_code, personal_code
from qinqing.ledger.models import LedgerAccount, LedgerEntry, LedgerTransfer
from qinqing.persons.models import Person
from qinqing.persons.service import new_person
from qinqing.runtime import build_runtime

REGION = "150600"
BALANCE = 10**12  # fen: nobody runs out during the run
SECRET = "bench-institution-secret"


def libpq_url(url: str) -> str:
    return re.sub(r"^postgresql\+psycopg://", "postgresql://", url)


def seed(rt: Any, families: int, out: Path) -> str:
    """Bound, funded families and one institution client; writes holder,member lines."""
    now = rt.clock.now()
    rnd = random.Random(20261123)
    seen: set[str] = set()
    persons: list[dict[str, Any]] = []
    pairs: list[tuple[str, str]] = []
    today = now.date()

    def person(scheme: str) -> tuple[uuid.UUID, str, dict[str, Any]]:
        while True:
            born = date(1950, 1, 1) + timedelta(days=rnd.randrange(25_000))
            first17 = f"{rnd.choice(AREA_CODES)}{born:%Y%m%d}{rnd.randrange(1000):03d}"
            if first17 not in seen:
                seen.add(first17)
                break
        number = with_check_digit(first17)
        p = new_person(
            rt.vault,
            ident=parse(number, today),
            name="测试",
            region_code=REGION,
            scheme=scheme,
            status="active",
            phone=None,
            now=now,
        )
        p.id = uuid.uuid4()
        row = {c.key: getattr(p, c.key) for c in Person.__table__.columns}
        return p.id, number, row

    links, accounts, transfers, entries = [], [], [], []
    funding_id = uuid.uuid4()
    for _ in range(families):
        hid, hnum, hrow = person("employee")
        mid, mnum, mrow = person("resident")
        persons += [hrow, mrow]
        pairs.append((hnum, mnum))
        links.append(
            {
                "id": uuid.uuid4(),
                "holder_id": hid,
                "member_id": mid,
                "pair_key": pair_key(hid, mid),
                "relation": "child",
                "mutual_aid": True,
                "mutual_aid_yearly_limit_fen": None,
                "status": "active",
                "region_code": REGION,
                "created_at": now,
                "created_by_kind": "person",
                "created_by_id": str(hid),
                "created_channel": "app",
                "consent_required": False,
                "activated_at": now,
                "updated_at": now,
            }
        )
        aid, tid = uuid.uuid4(), uuid.uuid4()
        accounts.append(
            {
                "id": aid,
                "code": personal_code(hid),
                "kind": "personal",
                "person_id": hid,
                "region_code": REGION,
                "balance_fen": BALANCE,
                "held_fen": 0,
                "allow_negative": False,
                "created_at": now,
            }
        )
        transfers.append(
            {
                "id": tid,
                "debit_account_id": funding_id,
                "credit_account_id": aid,
                "amount_fen": BALANCE,
                "kind": "contribution",
                "payment_id": None,
                "contribution_id": None,
                "created_at": now,
            }
        )
        entries += [
            {
                "id": uuid.uuid4(),
                "transfer_id": tid,
                "account_id": funding_id,
                "amount_fen": -BALANCE,
                "created_at": now,
            },
            {
                "id": uuid.uuid4(),
                "transfer_id": tid,
                "account_id": aid,
                "amount_fen": BALANCE,
                "created_at": now,
            },
        ]
    accounts.append(
        {
            "id": funding_id,
            "code": funding_code(REGION),
            "kind": "funding",
            "person_id": None,
            "region_code": REGION,
            "balance_fen": -BALANCE * families,
            "held_fen": 0,
            "allow_negative": True,
            "created_at": now,
        }
    )
    with rt.db.unit_of_work() as s:
        for table, rows in (
            (Person, persons),
            (FamilyLink, links),
            (LedgerAccount, accounts),
            (LedgerTransfer, transfers),
            (LedgerEntry, entries),
        ):
            for i in range(0, len(rows), 5000):
                s.execute(insert(table), rows[i : i + 5000])
        client, _ = auth.add_client(
            s,
            rt,
            name="bench hospital",
            kind="institution",
            region_code=REGION,
            bank_code=None,
            actor=Actor("operator", "bench", "admin"),
            secret=SECRET,
        )
    out.write_text("".join(f"{h},{m}\n" for h, m in pairs))
    return client.id


def pgbench(url: str, seconds: int, scale: int) -> float:
    db = libpq_url(url)
    subprocess.run(["pgbench", "-i", "-q", "-s", str(scale), db], check=True, capture_output=True)
    run = subprocess.run(
        ["pgbench", "-c", "8", "-j", "2", "-T", str(seconds), db],
        check=True,
        capture_output=True,
        text=True,
    )
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", run.stdout)
    if not m:
        raise SystemExit(f"could not read pgbench output:\n{run.stdout}")
    subprocess.run(
        [
            "psql",
            db,
            "-q",
            "-c",
            "DROP TABLE pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
        ],
        check=True,
        capture_output=True,
    )
    return float(m.group(1))


def start_server(url: str, key: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "QINQING_DATABASE_URL": url,
        "QINQING_SECRET_KEY": key,
        "QINQING_ENV": "production",
        "QINQING_FACE_PROVIDER": "none",
        "QINQING_LOG_JSON": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "qinqing", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(100):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start; see {log}")


def token(port: int, client_id: str) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port)
    body = f"grant_type=client_credentials&client_id={client_id}&client_secret={SECRET}"
    c.request(
        "POST", "/api/v1/auth/token", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    return str(json.loads(c.getresponse().read())["access_token"])


def single(port: int, tok: str, families: Path, seconds: int) -> dict[str, Any]:
    env = {**os.environ, "QQ_TOKEN": tok, "QQ_FAMILIES": str(families)}
    script = Path(__file__).with_name("payments.lua")
    run = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            "8",
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("QQ_RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("QQ_RESULT "))
    return result


def batches(
    port: int, tok: str, pairs: list[tuple[str, str]], seconds: int, clients: int, size: int
) -> dict[str, Any]:
    """Each client alternates a batch of authorizations and a batch settling them."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tok}"}
    done = [0] * clients
    failed = [0] * clients
    deadline = time.perf_counter() + seconds

    def post(conn: http.client.HTTPConnection, ops: list[dict[str, Any]]) -> list[Any]:
        conn.request("POST", "/api/v1/payments/batch", json.dumps({"operations": ops}), headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        if resp.status != 200:
            raise SystemExit(f"batch failed: {resp.status} {body}")
        return list(body["results"])

    def worker(n: int) -> None:
        rnd = random.Random(n)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
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
                        "reference": f"b{n}-{k}",
                    }
                )
            res = post(conn, ops)
            ok = [r["payment_id"] for r in res if r["ok"]]
            failed[n] += size - len(ok)
            done[n] += size
            if ok:
                res = post(conn, [{"op": "settle", "payment_id": p, "amount_fen": 100} for p in ok])
                failed[n] += sum(not r["ok"] for r in res)
                done[n] += len(ok)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"operations": sum(done), "failed": sum(failed), "seconds": elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description="Payments benchmark (issue 4).")
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/qinqing_bench"
    )
    parser.add_argument("--seconds", type=int, default=20, help="length of each measurement")
    parser.add_argument("--families", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument("--batch-clients", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    for tool in ("pgbench", "wrk", "psql"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            raise SystemExit(f"{tool} is needed (apt-get install -y {tool})")

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
    pairs = [tuple(ln.split(",")) for ln in (out / "families.csv").read_text().splitlines()]
    print(f"seeded {args.families} funded families in {time.perf_counter() - t0:.1f} s")

    tps = pgbench(args.database_url, args.seconds, args.pgbench_scale)
    print(f"(a) pgbench TPC-B-like, 8 clients, scale {args.pgbench_scale}: {tps:,.0f} tps")

    server = start_server(args.database_url, key, args.port, args.workers, out / "server.log")
    try:
        tok = token(args.port, client_id)
        s = single(args.port, tok, out / "families.csv", args.seconds)
        pay_s = s["settled"] / (s["duration_us"] / 1e6)
        print(
            f"(b) single payments over HTTP, 8 connections, {args.workers} workers: "
            f"{pay_s:,.0f} payments/s (authorize+settle; {s['requests']} requests, "
            f"{s['failed']} failed), p50 {s['p50_us'] / 1000:.1f} ms, "
            f"p99 {s['p99_us'] / 1000:.1f} ms"
        )
        b = batches(
            args.port,
            tok,
            pairs,
            args.seconds,
            args.batch_clients,  # type: ignore[arg-type]
            args.batch_size,
        )
        ops_s = b["operations"] / b["seconds"]
        print(
            f"(c) POST /payments/batch, {args.batch_size}-operation batches, "
            f"{args.batch_clients} clients: {ops_s:,.0f} operations/s "
            f"({b['operations']} operations, {b['failed']} refused)"
        )
    finally:
        server.terminate()
        server.wait(10)
    r_single, r_batch = pay_s / tps, ops_s / tps
    print(
        f"ratio (b)/(a): {r_single:.2f}  (target >= 0.5: {'met' if r_single >= 0.5 else 'MISSED'})"
    )
    print(
        f"p99 (b): {s['p99_us'] / 1000:.1f} ms  (target < 50 ms: "
        f"{'met' if s['p99_us'] < 50_000 else 'MISSED'})"
    )
    print(f"ratio (c)/(a): {r_batch:.1f}  (target >= 10: {'met' if r_batch >= 10 else 'MISSED'})")
    print(f"cores: {os.cpu_count()}; server log: {out / 'server.log'}")
    (out / "result.json").write_text(
        json.dumps(
            {
                "pgbench_tps": tps,
                "single": s,
                "payments_per_s": pay_s,
                "batch": b,
                "batch_ops_per_s": ops_s,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
