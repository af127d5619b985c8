"""``qinqing clients …``: API clients and, for a bank, its webhook endpoint (auth and
banks together, hence here)."""

from __future__ import annotations

from urllib.parse import urlsplit

import typer
from rich.table import Table

from qinqing.audit.actor import operator
from qinqing.auth import clients, service
from qinqing.auth.models import ApiClient
from qinqing.banks.endpoints import check_url, set_endpoint
from qinqing.kit import netaddr
from qinqing.kit.cli import console, domain_fail, print_json, run_once
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime, cli_runtime

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
        if webhook_url is not None:
            check_webhook_host(rt, webhook_url)
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


@clients_app.command("list")
def clients_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every API client: kind, region, bank code, active or disabled (never a secret)."""
    rt = cli_runtime(ctx)
    rows = run_once(rt.db, clients.list_clients, what="clients list")
    if as_json:
        print_json(
            [
                {
                    "client_id": r.id,
                    "name": r.name,
                    "kind": r.kind,
                    "region": r.region_code,
                    "bank_code": r.bank_code,
                    "disabled": r.disabled,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    table = Table()
    # The id is what an operator copies into the next command: never wrapped.
    table.add_column("client_id", no_wrap=True)
    for heading in ("name", "kind", "region", "bank", "status"):
        table.add_column(heading)
    for r in rows:
        table.add_row(
            r.id,
            r.name,
            r.kind,
            r.region_code,
            r.bank_code or "",
            "[red]disabled[/]" if r.disabled else "active",
        )
    console.print(table)
    if not rows:
        console.print("no API clients yet: `qinqing clients add NAME --kind … --region …`")


@clients_app.command("disable")
def clients_disable(ctx: typer.Context, client_id: str) -> None:
    """Disable a client: no new tokens, and its tokens stop working now."""
    rt = cli_runtime(ctx)
    ended = run_once(
        rt.db,
        lambda s: clients.disable_client(s, rt, client_id, actor=operator()),
        what="clients disable",
    )
    console.print(f"client [bold]{client_id}[/] disabled; {ended} token(s) ended")


@clients_app.command("rotate-secret")
def clients_rotate_secret(
    ctx: typer.Context, client_id: str, as_json: bool = typer.Option(False, "--json")
) -> None:
    """A new client secret, shown once; the old secret and its tokens stop working now."""
    rt = cli_runtime(ctx)
    hasher = service.passwords(rt)
    secret = run_once(
        rt.db,
        lambda s: clients.rotate_secret(s, rt, client_id, hasher, actor=operator()),
        what="clients rotate-secret",
    )
    if as_json:
        print_json({"client_id": client_id, "client_secret": secret})
        return
    console.print(f"client_id:     {client_id}")
    console.print(f"client_secret: {secret}")
    console.print("[yellow]The secret is shown only now; the old one no longer works.[/]")


@clients_app.command("set-webhook")
def clients_set_webhook(
    ctx: typer.Context,
    client_id: str = typer.Argument(..., metavar="ID", help="the bank client's id (qq_…)"),
    url: str = typer.Argument(..., metavar="URL", help="the new webhook URL (https)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change a bank client's webhook URL. A new webhook secret (whsec_…) is issued and
    shown this once; the old one stops signing at once. Audited."""
    rt = cli_runtime(ctx)
    try:
        url = check_url(url)
        check_webhook_host(rt, url)
        with rt.db.unit_of_work() as session:
            client = session.get(ApiClient, client_id.strip())
            if client is None:
                raise DomainError("CLIENT_NOT_FOUND", 404)
            webhook_secret = set_endpoint(session, rt, client, url, actor=operator())
    except DomainError as exc:
        domain_fail(exc)
    finally:
        rt.db.dispose()
    if as_json:
        print_json({"client_id": client.id, "webhook_url": url, "webhook_secret": webhook_secret})
        return
    console.print(f"client [bold]{client.name}[/] ({client.bank_code}): webhook URL set")
    console.print(f"webhook_url:    {url}", highlight=False)
    console.print(f"webhook_secret: {webhook_secret}", highlight=False)
    console.print("[yellow]The secret is shown only now; give it to the bank safely.[/]")


def check_webhook_host(rt: Runtime, url: str) -> None:
    """In production, what the URL's host resolves to now must be public too (loopback
    included: a receiver on the same machine is for development); the URL's spelling
    is ``banks.endpoints.check_url``'s, everywhere."""
    if not rt.settings.is_production:
        return
    check_url(url)
    parts = urlsplit(url.strip())
    if not netaddr.resolved_public(parts.hostname or "", parts.port):
        raise DomainError("WEBHOOK_URL_NOT_PUBLIC", 422)
