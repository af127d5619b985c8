"""`qinqing ledger reconcile`."""

from __future__ import annotations

import json

from sqlalchemy import update
from typer.testing import CliRunner

from ledger_support import fund, make_family
from qinqing.cli import app
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import LedgerAccount
from qinqing.runtime import Runtime


def _env(rt: Runtime) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
    }


def test_reconcile_reports_a_tampered_balance(rt: Runtime) -> None:
    fam = make_family(rt)
    fund(rt, fam.holder_id, 5_000)
    ok = CliRunner().invoke(app, ["ledger", "reconcile", "--json"], env=_env(rt))
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"ok": True, "discrepancies": []}
    with rt.db.unit_of_work() as s:
        s.execute(
            update(LedgerAccount)
            .where(LedgerAccount.code == personal_code(fam.holder_id))
            .values(balance_fen=999_999)
        )
    bad = CliRunner().invoke(app, ["ledger", "reconcile", "--json"], env=_env(rt))
    assert bad.exit_code == 1
    found = json.loads(bad.stdout)["discrepancies"]
    assert {
        "account": personal_code(fam.holder_id),
        "what": "balance",
        "recorded_fen": 999_999,
        "computed_fen": 5_000,
    } in found
