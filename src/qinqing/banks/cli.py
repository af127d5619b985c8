"""`qinqing webhooks ...`: the partner banks' webhook outbox."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.table import Table

from qinqing.audit.actor import operator
from qinqing.banks.delivery import deliver_webhooks, list_events, retry_event
from qinqing.kit import metrics
from qinqing.kit.cli import console, domain_fail, print_json
from qinqing.kit.errors import DomainError
from qinqing.kit.jobs import Job, Worker, install_signal_handlers, signals_stop, stop_requested
from qinqing.kit.logs import configure
from qinqing.runtime import Runtime, cli_runtime

webhooks_app = typer.Typer(help="Webhooks to partner banks (the outbox).", no_args_is_help=True)


@webhooks_app.callback()
def _webhooks() -> None:
    """Webhooks to partner banks (the outbox)."""


@webhooks_app.command("list")
def list_command(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help="only events that gave up"),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Webhook events, newest first (bodies are not shown)."""

    rt = cli_runtime(ctx)
    with rt.db.unit_of_work() as session:
        rows = [
            {
                "id": e.id,
                "client_id": e.client_id,
                "type": e.event_type,
                "status": e.status,
                "attempts": e.attempts,
                "last_status_code": e.last_status_code,
                "last_error": e.last_error,
                "next_attempt_at": e.next_attempt_at.isoformat(),
                "created_at": e.created_at.isoformat(),
            }
            for e in list_events(session, failed_only=failed, limit=limit)
        ]
    rt.db.dispose()
    if as_json:
        print_json(rows)
        return
    table = Table(title="Failed webhook events" if failed else "Webhook events")
    for col in ("id", "client", "type", "status", "attempts", "last result", "created"):
        table.add_column(col, overflow="fold")
    for r in rows:
        last = str(r["last_status_code"] or r["last_error"] or "")
        table.add_row(
            str(r["id"]),
            str(r["client_id"]),
            str(r["type"]),
            str(r["status"]),
            str(r["attempts"]),
            last,
            str(r["created_at"]),
        )
    console.print(table)


@webhooks_app.command("retry")
def retry_command(
    ctx: typer.Context, event_id: str, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Queue a failed event again, under the same webhook-id."""

    rt = cli_runtime(ctx)
    try:
        with rt.db.unit_of_work() as session:
            event = retry_event(session, rt, event_id, actor=operator())
            out = {"id": event.id, "status": event.status}
    except DomainError as exc:
        domain_fail(exc)
    finally:
        rt.db.dispose()
    if as_json:
        print_json(out)
    else:
        console.print(f"webhook event {out['id']} queued again")


@webhooks_app.command("deliver")
def deliver_command(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="one pass, then exit"),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    interval: float = typer.Option(5.0, "--interval", min=0.5, help="seconds between passes"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Deliver due webhook events (one pass with --once; else until SIGTERM or Ctrl-C).

    `qinqing worker` already does this as its `deliver_webhooks` job; this command
    runs that one job alone (the same worker loop and signal handling), e.g. to
    drain a backlog after an outage. Running both at once is safe.
    """

    total = 0

    def job(rt: Runtime, now: datetime) -> int:
        nonlocal total
        n = deliver_webhooks(rt, now, limit, stop=stop_requested)
        total += n
        return n

    # Into the host's metrics directory, as `qinqing worker` (docs/operations.md "Metrics").
    metrics.record_as_configured()
    rt = cli_runtime(ctx)
    worker = Worker(rt, [Job("deliver_webhooks", job)], interval=interval)
    try:
        if once:
            # SIGTERM mid-pass: the event under way is sent and recorded, the rest of
            # the batch is given back (due at once), and the pass ends.
            with signals_stop(worker):
                failed = worker.run_once().get("deliver_webhooks", 0) < 0
        else:
            configure(
                json_lines=rt.settings.log_json
                if rt.settings.log_json is not None
                else rt.settings.is_production
            )
            install_signal_handlers(worker)  # SIGTERM and Ctrl-C: finish the event under way
            worker.run_forever()
            failed = False
    finally:
        rt.db.dispose()
    if as_json:
        print_json({"delivered": total})
    else:
        console.print(f"delivered {total} webhook event(s)")
    if failed:
        raise typer.Exit(1)
