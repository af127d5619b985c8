"""``qinqing audit verify``: walk the keyed hash chain."""

from __future__ import annotations

import typer

from qinqing.audit.service import verify
from qinqing.kit.cli import console, fail, print_json
from qinqing.runtime import cli_runtime

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json"),
    expect: str | None = typer.Option(
        None,
        "--expect",
        metavar="COUNT:HASH",
        help="a checkpoint printed by an earlier run, kept outside the database",
    ),
) -> None:
    """Walk the keyed hash chain; name the first tampered entry, or a truncated tail."""
    checkpoint = None
    if expect is not None:
        count, _, digest = expect.partition(":")
        if not (count.isdigit() and len(digest) == 64):
            fail("--expect takes COUNT:HASH as printed by `audit verify`")
        checkpoint = (int(count), digest.lower())
    rt = cli_runtime(ctx)
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
