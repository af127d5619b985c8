"""`ledger reconcile` under load reports no false discrepancy: it reads balances,
entries and holds in one snapshot (both databases)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import event
from typer.testing import CliRunner

from qinqing.access.principal import Principal
from qinqing.accounting.reconcile import reconcile_snapshot
from qinqing.entrypoints.cli import app as cli_app
from qinqing.kit.db import Database
from qinqing.payments import service as payments
from qinqing.runtime import Runtime
from support.ledger import fund, institution_principal, make_family


def run(rt: Runtime, who: Principal, op: payments.Op) -> payments.Outcome:
    with rt.db.unit_of_work() as s:
        return payments.execute(s, rt, who, [op])[0]


def test_a_payment_committed_between_reconcile_statements_is_not_a_discrepancy(
    rt: Runtime,
) -> None:
    fam = make_family(rt)
    fund(rt, fam.holder_id, 100_000)
    inst = institution_principal(rt)
    hold = run(rt, inst, payments.Authorize(fam.holder_number, fam.member_number, 40_000, "R-1"))
    assert hold.ok
    settled: list[payments.Outcome] = []
    armed = [True]

    def between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Right after reconcile has summed the entries, another transaction settles
        # the hold: it adds entries and changes the balance and the held amount.
        if armed[0] and "sum(ledger_entries.amount_fen)" in statement and "GROUP BY" in statement:
            armed[0] = False
            settled.append(run(rt, inst, payments.Settle(str(hold.payment_id), 30_000)))

    event.listen(rt.db.engine, "after_cursor_execute", between)
    try:
        found = reconcile_snapshot(rt.db)
    finally:
        event.remove(rt.db.engine, "after_cursor_execute", between)
    assert settled and settled[0].ok  # the settle really ran in the middle
    assert found == []
    assert reconcile_snapshot(rt.db) == []  # and the state after it reconciles too


def test_reconcile_while_payments_run_never_reports_a_discrepancy(rt: Runtime) -> None:
    fams = [make_family(rt, seq=i + 1) for i in range(3)]
    for f in fams:
        fund(rt, f.holder_id, 1_000_000)
    inst = institution_principal(rt)
    stop = threading.Event()
    errors: list[BaseException] = []
    done = [0]

    def pay(n: int) -> None:
        f = fams[n]
        try:
            for i in range(20):
                if stop.is_set():
                    return
                auth = run(
                    rt, inst, payments.Authorize(f.holder_number, f.member_number, 500, f"P{n}-{i}")
                )
                assert auth.ok, auth
                op: payments.Op = (
                    payments.Settle(str(auth.payment_id), 300)
                    if i % 3
                    else payments.Void(str(auth.payment_id))
                )
                assert run(rt, inst, op).ok
                done[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(len(fams))]
    for t in threads:
        t.start()
    reports = []
    try:
        while any(t.is_alive() for t in threads) and len(reports) < 200:
            reports.append(reconcile_snapshot(rt.db))
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert errors == []
    assert reports and all(r == [] for r in reports), [r for r in reports if r][:3]
    assert done[0] > 0
    assert reconcile_snapshot(rt.db) == []


def test_the_cli_reconciles_on_a_snapshot(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    fam = make_family(rt)
    fund(rt, fam.holder_id, 10_000)
    used: list[bool] = []
    real = Database.snapshot

    def spy(self: Any) -> Any:
        used.append(True)
        return real(self)

    monkeypatch.setattr(Database, "snapshot", spy)
    env = {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
    }
    result = CliRunner().invoke(cli_app, ["ledger", "reconcile", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "discrepancies": []}
    assert used
