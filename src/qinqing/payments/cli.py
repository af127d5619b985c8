"""``qinqing payments ...``: releasing overdue holds (docs/guide.md §5.2)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.orm import Session

from qinqing.audit.actor import operator
from qinqing.audit.service import record
from qinqing.kit.cli import console, print_json, run_once
from qinqing.payments.service import expire_holds
from qinqing.runtime import cli_runtime

payments_app = typer.Typer(help="Mutual-aid payments.", no_args_is_help=True)


@payments_app.callback()
def _payments() -> None:
    """Mutual-aid payments."""


@payments_app.command("expire")
def expire_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Release every hold past its region's hold_expiry_hours."""

    rt = cli_runtime(ctx)
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

    count = run_once(rt.db, expire, what="payments expire")
    if as_json:
        print_json({"expired": count})
    else:
        console.print(f"{count} overdue hold(s) released")
