"""`qinqing ledger reconcile` and `qinqing ledger clear`."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from qinqing.accounting.reconcile import reconcile
from qinqing.entrypoints.cli import app
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import LedgerAccount, LedgerSystemAccount
from qinqing.notify.models import Notification
from qinqing.runtime import Runtime
from support.ledger import API, authorize_body, fund, institution_headers, make_family


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


def test_clear_posts_settled_payments_to_the_institution_once(
    rt: Runtime, client: TestClient
) -> None:
    """A settlement changes only the payer's balance; `ledger clear` posts the
    institution's side (reconcile counts it as pending until then), writes the
    holder's notice, and a second run has nothing left to do."""
    fam = make_family(rt)
    fund(rt, fam.holder_id, 50_000)
    inst = institution_headers(rt, client)
    r = client.post(
        f"{API}/payments/authorize", json=authorize_body(fam, 12_000, "clear-1"), headers=inst
    )
    assert r.status_code == 201, r.text
    pid = r.json()["payment_id"]
    r = client.post(f"{API}/payments/{pid}/settle", json={"amount_fen": 9_000}, headers=inst)
    assert r.status_code == 200, r.text
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []  # the 9,000 are pending, not missing
        assert (
            s.execute(
                select(LedgerSystemAccount.balance_fen).where(
                    LedgerSystemAccount.kind == "institution"
                )
            ).scalar_one()
            == 0
        )
    first = CliRunner().invoke(app, ["ledger", "clear", "--json"], env=_env(rt))
    assert first.exit_code == 0, first.output
    done = json.loads(first.stdout)
    assert done["payments"] == 1
    [(code, amount)] = [(c, v) for c, v in done["posted"].items() if c.startswith("institution:")]
    assert amount == 9_000
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []
        assert (
            s.execute(
                select(LedgerSystemAccount.balance_fen).where(LedgerSystemAccount.code == code)
            ).scalar_one()
            == 9_000
        )
        notices = (
            s.execute(
                select(Notification.payload).where(
                    Notification.person_id == fam.holder_id, Notification.kind == "payment.settled"
                )
            )
            .scalars()
            .all()
        )
        assert notices == [
            {"payment_id": pid, "member_id": str(fam.member_id), "amount_fen": 9_000}
        ]
    again = CliRunner().invoke(app, ["ledger", "clear", "--json"], env=_env(rt))
    assert json.loads(again.stdout)["payments"] == 0
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []
