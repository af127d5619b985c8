"""``qinqing clients …``: API clients and, for a bank, its webhook endpoint (auth and
banks together, hence here)."""

from __future__ import annotations

from urllib.parse import urlsplit

import typer

from qinqing.audit.actor import operator
from qinqing.auth import service
from qinqing.auth.models import ApiClient
from qinqing.banks.endpoints import check_url, set_endpoint
from qinqing.kit import netaddr
from qinqing.kit.cli import console, domain_fail, print_json
from qinqing.kit.errors import DomainError, not_found
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
                raise not_found("client")
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
