"""``qinqing contributions ...``: closing a contribution month (docs/guide.md §5.2)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from qinqing.audit.actor import operator
from qinqing.contributions.service import close_month
from qinqing.kit.cli import console, print_json, run_once
from qinqing.runtime import cli_runtime

contributions_app = typer.Typer(help="Monthly contributions.", no_args_is_help=True)


@contributions_app.callback()
def _contributions() -> None:
    """Monthly contributions."""


@contributions_app.command("close-month")
def close_month_command(
    ctx: typer.Context,
    period: Annotated[str, typer.Argument(help="the month to close, YYYY-MM (China time)")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Mark active employee and flexible-employment persons without a contribution
    for PERIOD as in arrears, in every region not yet closed for it."""

    rt = cli_runtime(ctx)
    actor = operator()
    closings = run_once(
        rt.db, lambda session: close_month(session, rt, period, actor), what="close-month"
    )
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
