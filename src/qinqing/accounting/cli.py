"""``qinqing ledger ...``: proving and clearing the ledger (docs/guide.md §5.2)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from qinqing.accounting.clearing import Cleared, clear
from qinqing.accounting.reconcile import reconcile_snapshot
from qinqing.audit.actor import operator
from qinqing.audit.service import record
from qinqing.kit.cli import console, print_json, run_once
from qinqing.runtime import cli_runtime

ledger_app = typer.Typer(help="The personal-account ledger.", no_args_is_help=True)


@ledger_app.callback()
def _ledger() -> None:
    """The personal-account ledger."""


@ledger_app.command("reconcile")
def reconcile_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Prove balance == sum(entries) and held == open holds for every account; exit 1 if not."""

    rt = cli_runtime(ctx)
    try:
        found = reconcile_snapshot(rt.db)
    finally:
        rt.db.dispose()
    if as_json:
        print_json(
            {
                "ok": not found,
                "discrepancies": [
                    {
                        "account": d.account_code,
                        "what": d.what,
                        "recorded_fen": d.recorded_fen,
                        "computed_fen": d.computed_fen,
                    }
                    for d in found
                ],
            }
        )
    elif not found:
        console.print("[green]ledger reconciled[/]: every balance equals the sum of its entries")
    else:
        table = Table(title="ledger discrepancies")
        for col in ("account", "what", "recorded (fen)", "computed (fen)"):
            table.add_column(col)
        for d in found:
            table.add_row(d.account_code, d.what, str(d.recorded_fen), str(d.computed_fen))
        console.print(table)
    if found:
        raise typer.Exit(1)


@ledger_app.command("clear")
def clear_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Post the settled payments and contributions not yet cleared to the institutions'
    and regions' accounts (the worker does this on every pass)."""

    rt = cli_runtime(ctx)
    actor = operator()

    def run(session: Session) -> Cleared:
        now = rt.clock.now()
        done = clear(session, now)
        if done.payments or done.contributions or done.resident_contributions:
            record(
                session,
                actor=actor,
                action="ledger.clear",
                subject_kind="ledger",
                subject_id="clearing",
                at=now,
                details={
                    "payments": done.payments,
                    "contributions": done.contributions,
                    "resident_contributions": done.resident_contributions,
                },
            )
        return done

    done = run_once(rt.db, run, what="ledger clear")
    if as_json:
        print_json(
            {
                "payments": done.payments,
                "contributions": done.contributions,
                "resident_contributions": done.resident_contributions,
                "posted": done.posted,
            }
        )
    else:
        console.print(
            f"{done.payments} payment(s), {done.contributions} contribution(s) and "
            f"{done.resident_contributions} resident contribution(s) cleared"
        )
