"""What one payment operation costs PostgreSQL inside a batch call.

Calls ``qinqing_payment_batch`` directly (no HTTP, no API server) on the database a
``python -m bench.payments`` run left behind (its funded families and institution
token), and reads the backend's own CPU time from /proc around each call, and the
WAL the cluster wrote: so the figure is the function's work alone, robust to other
load on the machine (CPU time, not wall time). Per round, three batches of
``--size`` operations on random families:

- authorizations decided one after another by ``qinqing_authorize_op`` (the batch
  carries one operation the caller refused already, a void, which keeps it on the
  per-operation path), then as many decided as a set (``qinqing_authorize_set``);
- settlements of those holds decided one after another (the batch carries one
  operation the caller refused already, an authorization, which keeps it on the
  per-operation path) — half of them;
- settlements of the other half as a settlement run (settles only:
  ``qinqing_resolve_set``).

    python -m bench.payments.sql_cost --database-url postgresql://…/qinqing_bench

Medians over ``--rounds``, in µs of backend CPU and bytes of WAL per operation.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import uuid
from typing import Any

import psycopg

from bench.common.database import DEFAULT_DATABASE_URL
from qinqing.payments.fast import conninfo_of

_BATCH = "SELECT * FROM qinqing_payment_batch(" + ", ".join(["%s"] * 21) + ")"  # noqa: S608
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _wal(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    assert row is not None
    return int(row[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.payments.sql_cost")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=1000, help="operations per batch")
    args = parser.parse_args(argv)
    conn = psycopg.connect(conninfo_of(args.database_url), autocommit=True)
    found = conn.execute(
        "SELECT pg_backend_pid(), t.token_hash, t.subject_id FROM access_tokens t"
        " WHERE t.subject_kind = 'client' AND t.revoked_at IS NULL"
        " ORDER BY t.expires_at DESC LIMIT 1"
    ).fetchone()
    if found is None:
        raise SystemExit("no institution token: run `python -m bench.payments` on it first")
    pid, token, client = found
    pairs = conn.execute(
        "SELECT hn.id_number_index, mn.id_number_index FROM family_links fl"
        " JOIN person_id_numbers hn ON hn.person_id = fl.holder_id"
        " JOIN person_id_numbers mn ON mn.person_id = fl.member_id"
        " WHERE fl.status = 'active' AND fl.mutual_aid"
    ).fetchall()
    rnd = random.Random(20261207)
    n = args.size
    figures: dict[str, list[tuple[float, float]]] = {
        "authorize, one after another": [],
        "authorize, as a set": [],
        "settle, one after another": [],
        "settle, as a set (settlement run)": [],
    }

    def call(
        kinds: list[str], refused: list[str | None], **arrays: list[Any]
    ) -> tuple[float, float]:
        size = len(kinds)
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        params = (
            token, client, "150600", now, now.year, kinds, refused,
            arrays.get("holder", [None] * size), arrays.get("member", [None] * size),
            arrays["amount"], arrays.get("reference", [None] * size), arrays["id"],
            ["150600"], [72], f"probe:{client}", 10**9, now, None, None, None, None,
        )  # fmt: skip
        w0, c0 = _wal(conn), _cpu_s(pid)
        rows = conn.execute(_BATCH, params).fetchall()
        c1, w1 = _cpu_s(pid), _wal(conn)
        if any(r.code is not None for r in rows[1:]) or rows[0].op is None:
            raise SystemExit(f"refused operations: {[r.code for r in rows if r.code][:5]}")
        return (c1 - c0) / size * 1e6, (w1 - w0) / size

    conn.row_factory = psycopg.rows.namedtuple_row  # type: ignore[assignment]
    for r in range(args.rounds):
        half = n // 2
        chosen = [rnd.choice(pairs) for _ in range(n)]
        ids = [uuid.uuid4() for _ in range(n)]
        refs = [f"S{uuid.uuid4().hex}" for _ in range(n)]
        # A void the caller refused already keeps the first half per operation.
        figures["authorize, one after another"].append(
            call(
                ["void", *["authorize"] * half],
                ["PAYMENT_NOT_FOUND", *[None] * half],
                holder=[None, *[p[0] for p in chosen[:half]]],
                member=[None, *[p[1] for p in chosen[:half]]],
                amount=[0, *[100] * half],
                reference=[None, *refs[:half]],
                id=[None, *ids[:half]],
            )
        )
        figures["authorize, as a set"].append(
            call(
                ["authorize"] * (n - half),
                [None] * (n - half),
                holder=[p[0] for p in chosen[half:]],
                member=[p[1] for p in chosen[half:]],
                amount=[100] * (n - half),
                reference=refs[half:],
                id=ids[half:],
            )
        )
        # An authorization the caller refused already keeps the batch per operation.
        one_by_one = call(
            ["authorize", *["settle"] * half],
            ["AMOUNT_INVALID", *[None] * half],
            amount=[0, *[100] * half],
            id=[None, *ids[:half]],
        )
        figures["settle, one after another"].append(one_by_one)
        figures["settle, as a set (settlement run)"].append(
            call(
                ["settle"] * (n - half),
                [None] * (n - half),
                amount=[100] * (n - half),
                id=ids[half:],
            )
        )
        print(
            f"round {r + 1}: " + ", ".join(f"{k} {v[-1][0]:.0f} µs" for k, v in figures.items()),
            flush=True,
        )
    print(f"medians of {args.rounds} rounds, batches of {n}: backend CPU and WAL per operation")
    for name, values in figures.items():
        cpu = statistics.median(v[0] for v in values)
        wal = statistics.median(v[1] for v in values)
        print(f"  {name:<36} {cpu:6.0f} µs CPU  {wal:7,.0f} B WAL")


if __name__ == "__main__":
    main()
