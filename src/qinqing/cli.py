"""The `qinqing` command line (SPEC §5 "Command line"): parse, call a service, print."""

from __future__ import annotations

import os

import typer

from qinqing.cli_support import console, domain_fail, fail, operator, print_json, runtime
from qinqing.errors import DomainError

app = typer.Typer(help="Qinqing 亲情: medical-insurance family accounts.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff accounts (clerk, reviewer, admin).", no_args_is_help=True)
clients_app = typer.Typer(help="API clients (bank, institution, collector).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(staff_app, name="staff")
app.add_typer(clients_app, name="clients")
app.add_typer(audit_app, name="audit")


def _mount() -> None:
    from qinqing.identity.cli import keys_app
    from qinqing.ledger.cli import contributions_app, ledger_app, payments_app
    from qinqing.notify.cli import notify_app
    from qinqing.persons.cli import persons_app
    from qinqing.regions.cli import policy_app

    app.add_typer(policy_app, name="policy")
    app.add_typer(persons_app, name="persons")
    app.add_typer(notify_app, name="notify")
    app.add_typer(contributions_app, name="contributions")
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(payments_app, name="payments")
    app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    demo: bool = typer.Option(False, "--demo", help="load the demo data and print its logins"),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="worker processes"),
) -> None:
    """Run the API (docs at /docs)."""
    from qinqing.serve import run

    run(host=host, port=port, demo=demo, workers=workers)


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="run one pass, print what it did, exit"),
    interval: float = typer.Option(
        2.0, "--interval", min=0.05, max=3600, help="seconds to sleep when a pass found no work"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the background jobs (notifications, hold expiry, purges) until SIGTERM."""
    from qinqing.worker import Worker, install_signal_handlers

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
        from qinqing.logging_setup import configure

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
    console.print(
        f"database at [bold]{rt.db.engine.url.render_as_string(hide_password=True)}[/] is up to date"
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
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add an API client; its secret is shown this once and stored only hashed."""
    from qinqing.auth import service

    rt = runtime()
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
    except DomainError as exc:
        domain_fail(exc)
    if as_json:
        print_json({"client_id": client.id, "client_secret": secret})
        return
    console.print(f"client [bold]{client.name}[/] ({client.kind}, scopes: {client.scopes})")
    console.print(f"client_id:     {client.id}")
    console.print(f"client_secret: {secret}")
    console.print("[yellow]The secret is shown only now; store it safely.[/]")


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
    with rt.db.unit_of_work() as session:
        result = verify(session, expect=checkpoint)
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
