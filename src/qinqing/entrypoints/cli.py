"""The `qinqing` command line (docs/guide.md §5.2): parse, call a service, print."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from qinqing.accounting.cli import ledger_app
from qinqing.audit.cli import audit_app
from qinqing.auth.cli import staff_app
from qinqing.banks.cli import webhooks_app
from qinqing.config import Settings
from qinqing.contributions.cli import contributions_app
from qinqing.entrypoints.bootstrap import open_runtime
from qinqing.entrypoints.worker import JOBS, Worker, install_signal_handlers, signals_stop
from qinqing.identity.vault import generate_key
from qinqing.kit import metrics
from qinqing.kit.cli import console, err_console, fail, print_json
from qinqing.kit.logs import configure
from qinqing.notify.cli import notify_app
from qinqing.ops.backup import BackupError, backup
from qinqing.ops.cli import keys_app
from qinqing.ops.clients import clients_app
from qinqing.payments.cli import payments_app
from qinqing.persons.cli import persons_app
from qinqing.regions.cli import policy_app
from qinqing.runtime import cli_runtime

# Plain (click) help: flags show as flags (Rich help labels them `<bool>`, yet they take
# no value), ranges show as ranges, and nothing is boxed when written to a log file.
app = typer.Typer(
    help="Qinqing 亲情: medical-insurance family accounts.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="The database: schema and backups.", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (staff_app, "staff"),
    (clients_app, "clients"),
    (audit_app, "audit"),
    (policy_app, "policy"),
    (persons_app, "persons"),
    (notify_app, "notify"),
    (contributions_app, "contributions"),
    (ledger_app, "ledger"),
    (payments_app, "payments"),
    (webhooks_app, "webhooks"),
    (keys_app, "keys"),
):
    app.add_typer(sub, name=name)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Qinqing 亲情: medical-insurance family accounts."""
    # Every command's runtime comes from here (runtime.cli_runtime).
    ctx.obj = open_runtime
    # A CLI job joins the host's metrics directory where serve made one.
    metrics.record_as_configured(join_only=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, min=1, max=65535, help="port to listen on (1-65535)"),
    demo: bool = typer.Option(False, "--demo", help="load the demo data and print its logins"),
    reset: bool = typer.Option(
        False,
        "--reset",
        help="with --demo: delete the demo's SQLite database and start afresh "
        "(development mode and the default SQLite database only)",
    ),
    demo_json: bool = typer.Option(
        False, "--json", help="with --demo: print the logins as one JSON document"
    ),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="worker processes"),
) -> None:
    """Run the API (docs at /docs)."""
    if (reset or demo_json) and not demo:
        fail("--reset and --json go with --demo")
    # serve and the worker make the host's metrics directory (docs/operations.md).
    metrics.record_as_configured()
    # Imported here, not at the top: the web server and the whole HTTP app (uvicorn,
    # every route and page) would cost every other command 0.4 s of CPU at start-up.
    from qinqing.entrypoints.serve import run

    run(host=host, port=port, demo=demo, workers=workers, reset=reset, demo_json=demo_json)


@app.command()
def worker(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="run one pass, print what it did, exit"),
    interval: float = typer.Option(
        2.0, "--interval", min=0.05, max=3600, help="seconds to sleep when a pass found no work"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the background jobs (notifications, webhooks, hold expiry, purges) until SIGTERM."""
    # serve and the worker make the host's metrics directory (docs/operations.md).
    metrics.record_as_configured()
    rt = cli_runtime(ctx)
    w = Worker(rt, JOBS, interval=interval)
    try:
        if once:
            # SIGTERM mid-pass: the job under way finishes (or gives back what it
            # claimed), no further job starts.
            with signals_stop(w):
                done = w.run_once()
            if as_json:
                print_json(done)
            else:
                for name, count in done.items():
                    console.print(f"{name}: {'failed' if count < 0 else count}")
            if any(n < 0 for n in done.values()):
                raise typer.Exit(1)
            return
        configure(
            json_lines=rt.settings.log_json
            if rt.settings.log_json is not None
            else rt.settings.is_production
        )
        install_signal_handlers(w)
        w.run_forever()
    finally:
        rt.db.dispose()


@app.command()
def keygen() -> None:
    """Print a new random QINQING_SECRET_KEY."""
    typer.echo(generate_key())


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Run the migrations up to the newest schema."""
    rt = cli_runtime(ctx)
    rt.db.dispose()
    placed = ", its tables placed on Citus" if rt.settings.distributed.strip() else ""
    console.print(
        f"database at [bold]{rt.db.engine.url.render_as_string(hide_password=True)}[/] "
        f"is up to date{placed}"
    )


@db_app.command("backup")
def db_backup(
    file: Path = typer.Argument(..., help="the new file to write the copy to"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A consistent copy of the embedded SQLite database, while the service runs.

    Restore: put the copy as qinqing.sqlite3 in a data directory with the same
    secret.key (or QINQING_SECRET_KEY). PostgreSQL: pg_dump (docs/operations.md).
    """
    settings = Settings()
    with Progress(
        TextColumn("copying"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        disable=as_json or not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("pages", total=None)
        try:
            made = backup(
                settings, file, lambda done, total: bar.update(task, completed=done, total=total)
            )
        except BackupError as exc:
            fail(str(exc), code=2)
    if as_json:
        print_json(
            {
                "backup": str(made.path),
                "bytes": made.bytes,
                "pages": made.pages,
                "key": made.key_source,
            }
        )
        return
    console.print(f"[green]backup written[/]: {made.path} ({made.bytes} bytes, {made.pages} pages)")
    console.print(
        f"[yellow]The copy is unreadable without the vault key[/] ({made.key_source}). "
        "Keep the key safe and apart from the backups; a restore needs both."
    )


def main() -> None:
    app()
