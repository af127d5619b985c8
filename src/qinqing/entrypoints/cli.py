"""The `qinqing` command line (docs/guide.md §5.2): parse, call a service, print."""

from __future__ import annotations

import os

import typer

from qinqing.kit.cli import console, domain_fail, fail, operator, print_json, runtime
from qinqing.kit.errors import DomainError

# Plain (click) help: flags show as flags (Rich help labels them `<bool>`, yet they take
# no value), ranges show as ranges, and nothing is boxed when written to a log file.
app = typer.Typer(
    help="Qinqing 亲情: medical-insurance family accounts.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff accounts (clerk, reviewer, admin).", no_args_is_help=True)
clients_app = typer.Typer(help="API clients (bank, institution, collector).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(staff_app, name="staff")
app.add_typer(clients_app, name="clients")
app.add_typer(audit_app, name="audit")


def _mount() -> None:
    from qinqing.banks.cli import webhooks_app
    from qinqing.contributions.cli import contributions_app
    from qinqing.identity.cli import keys_app
    from qinqing.ledger.cli import ledger_app
    from qinqing.notify.cli import notify_app
    from qinqing.payments.cli import payments_app
    from qinqing.persons.cli import persons_app
    from qinqing.regions.cli import policy_app

    app.add_typer(policy_app, name="policy")
    app.add_typer(persons_app, name="persons")
    app.add_typer(notify_app, name="notify")
    app.add_typer(contributions_app, name="contributions")
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(payments_app, name="payments")
    app.add_typer(webhooks_app, name="webhooks")
    app.add_typer(keys_app, name="keys")


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
    from qinqing.entrypoints.serve import run

    if (reset or demo_json) and not demo:
        fail("--reset and --json go with --demo")
    run(host=host, port=port, demo=demo, workers=workers, reset=reset, demo_json=demo_json)


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="run one pass, print what it did, exit"),
    interval: float = typer.Option(
        2.0, "--interval", min=0.05, max=3600, help="seconds to sleep when a pass found no work"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the background jobs (notifications, webhooks, hold expiry, purges) until SIGTERM."""
    from qinqing.entrypoints.worker import Worker, install_signal_handlers

    rt = runtime()
    w = Worker(rt, interval=interval)
    try:
        if once:
            done = w.run_once()
            if as_json:
                print_json(done)
            else:
                for name, count in done.items():
                    console.print(f"{name}: {'failed' if count < 0 else count}")
            if any(n < 0 for n in done.values()):
                raise typer.Exit(1)
            return
        from qinqing.kit.logs import configure

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
    from qinqing.identity.vault import generate_key

    typer.echo(generate_key())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Run the migrations up to the newest schema."""
    rt = runtime()
    rt.db.dispose()
    placed = ", its tables placed on Citus" if rt.settings.distributed.strip() else ""
    console.print(
        f"database at [bold]{rt.db.engine.url.render_as_string(hide_password=True)}[/] "
        f"is up to date{placed}"
    )


@staff_app.command("add")
def staff_add(
    username: str,
    role: str = typer.Option(..., "--role", help="clerk | reviewer | admin"),
    region: str = typer.Option(..., "--region", help="GB/T 2260 region code"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add a staff account; the password comes from QINQING_NEW_PASSWORD or a prompt."""
    from qinqing.auth import service

    password = os.environ.get("QINQING_NEW_PASSWORD")
    if not password:
        if not os.isatty(0):
            fail("no password: set QINQING_NEW_PASSWORD or run in a terminal to be prompted")
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    rt = runtime()
    try:
        with rt.db.unit_of_work() as session:
            staff = service.add_staff(
                session,
                rt,
                username=username,
                role=role,
                region_code=region,
                password=password,
                actor=operator(),
            )
    except DomainError as exc:
        domain_fail(exc)
    finally:
        # Close the pool's connections rather than leave them to the garbage collector.
        rt.db.dispose()
    out = {
        "id": str(staff.id),
        "username": staff.username,
        "role": staff.role,
        "region": staff.region_code,
    }
    if as_json:
        print_json(out)
    else:
        console.print(
            f"staff [bold]{staff.username}[/] ({staff.role}, region {staff.region_code}) added"
        )


@clients_app.command("add")
def clients_add(
    name: str,
    kind: str = typer.Option(..., "--kind", help="bank | institution | collector"),
    region: str = typer.Option(..., "--region", help="GB/T 2260 region code"),
    bank_code: str | None = typer.Option(None, "--bank-code", help="required for a bank"),
    webhook_url: str | None = typer.Option(
        None, "--webhook-url", help="a bank's webhook URL (https); prints a webhook_secret"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add an API client; its secret (and webhook secret) is shown this once, stored only
    hashed (encrypted)."""
    from qinqing.auth import service
    from qinqing.banks.webhooks import set_endpoint

    rt = runtime()
    webhook_secret: str | None = None
    try:
        with rt.db.unit_of_work() as session:
            client, secret = service.add_client(
                session,
                rt,
                name=name,
                kind=kind,
                region_code=region,
                bank_code=bank_code,
                actor=operator(),
            )
            if webhook_url is not None:
                webhook_secret = set_endpoint(session, rt, client, webhook_url, actor=operator())
    except DomainError as exc:
        domain_fail(exc)
    finally:
        rt.db.dispose()
    if as_json:
        out = {"client_id": client.id, "client_secret": secret}
        if webhook_secret is not None:
            out["webhook_secret"] = webhook_secret
        print_json(out)
        return
    console.print(f"client [bold]{client.name}[/] ({client.kind}, scopes: {client.scopes})")
    console.print(f"client_id:     {client.id}")
    console.print(f"client_secret: {secret}")
    if client.bank_code:
        console.print(f"bank_code:     {client.bank_code}")
    if webhook_secret is not None:
        console.print(f"webhook_secret: {webhook_secret}")
    console.print("[yellow]Secrets are shown only now; store them safely.[/]")


@audit_app.command("verify")
def audit_verify(
    as_json: bool = typer.Option(False, "--json"),
    expect: str | None = typer.Option(
        None,
        "--expect",
        metavar="COUNT:HASH",
        help="a checkpoint printed by an earlier run, kept outside the database",
    ),
) -> None:
    """Walk the keyed hash chain; name the first tampered entry, or a truncated tail."""
    from qinqing.audit.service import verify

    checkpoint = None
    if expect is not None:
        count, _, digest = expect.partition(":")
        if not (count.isdigit() and len(digest) == 64):
            fail("--expect takes COUNT:HASH as printed by `audit verify`")
        checkpoint = (int(count), digest.lower())
    rt = runtime()
    try:
        with rt.db.unit_of_work() as session:
            result = verify(session, expect=checkpoint)
    finally:
        rt.db.dispose()
    if as_json:
        print_json(
            {
                "ok": result.ok,
                "status": result.status,
                "checked": result.checked,
                "head": {"count": result.head_seq, "hash": result.head_hash},
                "first_bad_seq": result.first_bad_seq,
                "problem": result.problem,
            }
        )
    elif result.ok:
        console.print(
            f"[green]audit chain intact[/]: {result.checked} entries verified; "
            f"checkpoint {result.head_seq}:{result.head_hash}"
        )
    else:
        console.print(
            f"[bold red]audit chain {result.status}[/] at entry #{result.first_bad_seq}: "
            f"{result.problem} ({result.checked} entries verified before it)"
        )
    if not result.ok:
        raise typer.Exit(1)


_mount()


def main() -> None:
    app()
