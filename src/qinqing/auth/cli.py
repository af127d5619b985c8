"""``qinqing staff …``: staff accounts (docs/guide.md §5.2)."""

from __future__ import annotations

import io
import os

import segno
import typer
from rich.table import Table

from qinqing.audit.actor import operator
from qinqing.auth import service, staff
from qinqing.kit.cli import console, domain_fail, fail, print_json, run_once
from qinqing.kit.errors import DomainError
from qinqing.runtime import cli_runtime

staff_app = typer.Typer(help="Staff accounts (clerk, reviewer, admin).", no_args_is_help=True)


def _new_password() -> str:
    """From QINQING_NEW_PASSWORD or a hidden prompt; never an argument (it would stay
    in the shell's history and the process list)."""
    password = os.environ.get("QINQING_NEW_PASSWORD")
    if not password:
        if not os.isatty(0):
            fail("no password: set QINQING_NEW_PASSWORD or run in a terminal to be prompted")
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


@staff_app.command("add")
def staff_add(
    ctx: typer.Context,
    username: str,
    role: str = typer.Option(..., "--role", help="clerk | reviewer | admin"),
    region: str = typer.Option(..., "--region", help="GB/T 2260 region code"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add a staff account; the password comes from QINQING_NEW_PASSWORD or a prompt
    (at least 12 characters, not a common password)."""
    password = _new_password()
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


@staff_app.command("list")
def staff_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every staff account: role, region, whether disabled, second factor enrolled,
    and whether it still has the demo's default password."""
    rt = cli_runtime(ctx)
    rows = run_once(rt.db, staff.list_staff, what="staff list")
    if as_json:
        print_json(
            [
                {
                    "username": r.username,
                    "role": r.role,
                    "region": r.region_code,
                    "disabled": r.disabled,
                    "mfa": r.mfa,
                    "default_password": r.default_password,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    table = Table()
    table.add_column("username", no_wrap=True)
    for heading in ("role", "region", "status", "second factor", "password"):
        table.add_column(heading)
    for r in rows:
        table.add_row(
            r.username,
            r.role,
            r.region_code,
            "disabled" if r.disabled else "active",
            "TOTP" if r.mfa else "[yellow]none[/]",
            "[red]demo default[/]" if r.default_password else "set",
        )
    console.print(table)
    if not rows:
        console.print("no staff accounts yet: `qinqing staff add USERNAME --role … --region …`")


@staff_app.command("disable")
def staff_disable(ctx: typer.Context, username: str) -> None:
    """Disable an account: it can no longer log in, and its sessions end now."""
    rt = cli_runtime(ctx)
    ended = run_once(
        rt.db,
        lambda s: staff.disable_staff(s, rt, username, actor=operator()),
        what="staff disable",
    )
    console.print(f"staff [bold]{username}[/] disabled; {ended} session(s) ended")


@staff_app.command("reset-password")
def staff_reset_password(ctx: typer.Context, username: str) -> None:
    """A new password from QINQING_NEW_PASSWORD or a prompt; the sessions end."""
    password = _new_password()
    rt = cli_runtime(ctx)
    hasher = service.passwords(rt)
    run_once(
        rt.db,
        lambda s: staff.reset_password(s, rt, username, password, hasher, actor=operator()),
        what="staff reset-password",
    )
    console.print(f"password of staff [bold]{username}[/] reset; its sessions ended")


@staff_app.command("mfa")
def staff_mfa(
    ctx: typer.Context, username: str, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Enrol (or re-enrol) the TOTP second factor: prints the otpauth URI and a QR code
    for an authenticator app, once. An earlier enrolment stops working."""
    rt = cli_runtime(ctx)
    enrolment = run_once(
        rt.db, lambda s: staff.enrol_mfa(s, rt, username, actor=operator()), what="staff mfa"
    )
    if as_json:
        print_json({"username": enrolment.username, "otpauth_uri": enrolment.uri})
        return
    qr = io.StringIO()
    segno.make(enrolment.uri, error="m").terminal(out=qr, compact=True)
    console.print(
        f"Scan this with the authenticator app of [bold]{enrolment.username}[/] "
        "(shown once; run again to replace it):"
    )
    console.file.write(qr.getvalue())
    console.print(enrolment.uri, highlight=False, soft_wrap=True)
