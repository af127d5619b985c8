"""``qinqing staff …``: staff accounts (docs/guide.md §5.2)."""

from __future__ import annotations

import os

import typer

from qinqing.audit.actor import operator
from qinqing.auth import service
from qinqing.kit.cli import console, domain_fail, fail, print_json
from qinqing.kit.errors import DomainError
from qinqing.runtime import cli_runtime

staff_app = typer.Typer(help="Staff accounts (clerk, reviewer, admin).", no_args_is_help=True)


@staff_app.command("add")
def staff_add(
    ctx: typer.Context,
    username: str,
    role: str = typer.Option(..., "--role", help="clerk | reviewer | admin"),
    region: str = typer.Option(..., "--region", help="GB/T 2260 region code"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add a staff account; the password comes from QINQING_NEW_PASSWORD or a prompt."""
    password = os.environ.get("QINQING_NEW_PASSWORD")
    if not password:
        if not os.isatty(0):
            fail("no password: set QINQING_NEW_PASSWORD or run in a terminal to be prompted")
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    rt = cli_runtime(ctx)
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
