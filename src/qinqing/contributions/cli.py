"""``qinqing contributions ...``: closing a contribution month (docs/guide.md §5.2)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from qinqing.cli_support import console, domain_fail, operator, print_json, runtime
from qinqing.errors import DomainError

contributions_app = typer.Typer(help="Monthly contributions.", no_args_is_help=True)


@contributions_app.callback()
def _contributions() -> None:
    """Monthly contributions."""


@contributions_app.command("close-month")
def close_month_command(
    period: Annotated[str, typer.Argument(help="the month to close, YYYY-MM (China time)")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Mark active employee and flexible-employment persons without a contribution
    for PERIOD as in arrears, in every region not yet closed for it."""
    from qinqing.ledger.contributions import close_month

    rt = runtime()
    actor = operator()
    try:
        closings = rt.db.run(
            lambda session: close_month(session, rt, period, actor), what="close-month"
        )
    except DomainError as exc:
        domain_fail(exc)
    finally:
        rt.db.dispose()
    period = period.strip()
    if as_json:
        print_json(
            {
                "period": period,
                "regions": [
                    {"region_code": c.region_code, "marked_arrears": c.marked_arrears}
                    for c in closings
                ],
            }
        )
        return
    table = Table(title=f"contributions closed for {period}")
    table.add_column("region")
    table.add_column("name")
    table.add_column("marked arrears", justify="right")
    for c in closings:
        table.add_row(c.region_code, c.region_name, str(c.marked_arrears))
    console.print(table)
    total = sum(c.marked_arrears for c in closings)
    console.print(f"{len(closings)} region(s) closed, {total} person(s) marked in arrears")


ledger_app = typer.Typer(help="The personal-account ledger.", no_args_is_help=True)
payments_app = typer.Typer(help="Mutual-aid payments.", no_args_is_help=True)


@ledger_app.callback()
def _ledger() -> None:
    """The personal-account ledger."""


@payments_app.callback()
def _payments() -> None:
    """Mutual-aid payments."""


@ledger_app.command("reconcile")
def reconcile_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Prove balance == sum(entries) and held == open holds for every account; exit 1 if not."""
    from qinqing.ledger.accounts import reconcile_snapshot

    rt = runtime()
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


@payments_app.command("expire")
def expire_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Release every hold past its region's hold_expiry_hours."""
    from qinqing.audit.service import record
    from qinqing.ledger.payments import expire_holds

    rt = runtime()
    actor = operator()

    def expire(session: Session) -> int:
        now = rt.clock.now()
        count = expire_holds(session, now)
        if count:
            record(
                session,
                actor=actor,
                action="payments.expire",
                subject_kind="payments",
                subject_id="overdue",
                at=now,
                details={"expired": count},
            )
        return count

    try:
        count = rt.db.run(expire, what="payments expire")
    except DomainError as exc:
        domain_fail(exc)
    finally:
        rt.db.dispose()
    if as_json:
        print_json({"expired": count})
    else:
        console.print(f"{count} overdue hold(s) released")
