"""``qinqing clients …``: API clients and, for a bank, its webhook endpoint (auth and
banks together, hence here)."""

from __future__ import annotations

import typer

from qinqing.audit.actor import operator
from qinqing.auth import service
from qinqing.banks.endpoints import set_endpoint
from qinqing.kit.cli import console, domain_fail, print_json
from qinqing.kit.errors import DomainError
from qinqing.runtime import cli_runtime

clients_app = typer.Typer(help="API clients (bank, institution, collector).", no_args_is_help=True)


@clients_app.command("add")
def clients_add(
    ctx: typer.Context,
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
    rt = cli_runtime(ctx)
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
