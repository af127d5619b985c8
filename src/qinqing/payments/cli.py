"""``qinqing payments ...``: releasing overdue holds (docs/guide.md §5.2)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.orm import Session

from qinqing.kit.cli import console, operator, print_json, run_once, runtime

payments_app = typer.Typer(help="Mutual-aid payments.", no_args_is_help=True)


@payments_app.callback()
def _payments() -> None:
    """Mutual-aid payments."""


@payments_app.command("expire")
def expire_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Release every hold past its region's hold_expiry_hours."""
    from qinqing.audit.service import record
    from qinqing.payments.service import expire_holds

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

    count = run_once(rt, expire, what="payments expire")
    if as_json:
        print_json({"expired": count})
    else:
        console.print(f"{count} overdue hold(s) released")
