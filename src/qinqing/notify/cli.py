"""`qinqing notify ...` commands."""

from __future__ import annotations

import typer

from qinqing.audit.actor import operator
from qinqing.kit.cli import console, print_json
from qinqing.notify.sender import deliver
from qinqing.runtime import cli_runtime

notify_app = typer.Typer(help="Notifications outbox.", no_args_is_help=True)


@notify_app.callback()
def _notify() -> None:
    """Notifications outbox."""


@notify_app.command("deliver")
def deliver_command(
    ctx: typer.Context,
    limit: int = typer.Option(500, "--limit", min=1, max=100_000, help="at most this many"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Send undelivered notices through the configured sender and mark them delivered."""

    rt = cli_runtime(ctx)
    try:
        count = deliver(rt, limit, actor=operator())
    finally:
        rt.db.dispose()
    if as_json:
        print_json({"delivered": count})
    else:
        console.print(f"delivered {count} notice(s)")
