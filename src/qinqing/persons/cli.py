"""``qinqing persons ...``: the insured-person registry from the command line (docs/guide.md §5)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from qinqing.audit.actor import operator
from qinqing.kit.cli import console, domain_fail, fail, print_json
from qinqing.kit.errors import DomainError
from qinqing.persons.import_file import ENCODINGS, EXPECTED_HEADER
from qinqing.persons.importer import ImportReport, import_csv
from qinqing.runtime import cli_runtime

TABLE_LIMIT = 50
# Exit status of `persons import`, for scripts: every row taken (or none to take),
# some rows refused, nothing imported (every row refused, or the file as a whole).
EXIT_ALL_TAKEN, EXIT_NOTHING_IMPORTED, EXIT_SOME_REFUSED = 0, 1, 2

persons_app = typer.Typer(help="Insured persons (参保人).", no_args_is_help=True)


@persons_app.callback()
def _persons() -> None:
    """Insured persons (参保人)."""


def _run(ctx: typer.Context, file: Path, *, show_progress: bool, encoding: str) -> ImportReport:
    try:
        rt = cli_runtime(ctx)
    except typer.Exit:
        # A service that cannot start imported nothing (status 2 means "some refused").
        raise typer.Exit(EXIT_NOTHING_IMPORTED) from None
    try:
        if not show_progress:
            return import_csv(rt, file, actor=operator(), encoding=encoding)
        columns = (
            TextColumn("[bold]importing[/]"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("import", total=file.stat().st_size)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return import_csv(rt, file, actor=operator(), on_progress=advance, encoding=encoding)
    finally:
        rt.db.dispose()


def _print_changed(report: ImportReport) -> None:
    """Which lines changed which fields (the values are in --json, masked where personal)."""
    table = Table("line", "changed", title="changed persons", title_justify="left")
    for change in report.changed[:TABLE_LIMIT]:
        table.add_row(str(change.line), ", ".join(change.fields))
    console.print(table)
    more = len(report.changed) - TABLE_LIMIT
    if more > 0:
        console.print(f"… and {more} more changed persons (use --json to list them all)")


def _print_report(report: ImportReport) -> None:
    colour = "green" if not report.refused else "yellow"
    console.print(
        f"[{colour}]taken {report.taken}, refused {len(report.refused)}[/]: "
        f"{report.created} new, {len(report.changed)} known persons changed",
        highlight=False,
    )
    if report.changed:
        _print_changed(report)
    if not report.refused:
        return
    table = Table("line", "code", "reason", title="refused rows", title_justify="left")
    for refusal in report.refused[:TABLE_LIMIT]:
        table.add_row(str(refusal.line), refusal.code, refusal.reason)
    console.print(table)
    more = len(report.refused) - TABLE_LIMIT
    if more > 0:
        console.print(
            f"… and {more} more refused rows (use --json to list them all)", highlight=False
        )


@persons_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help=f"CSV with the header {EXPECTED_HEADER}", show_default=False),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    encoding: Annotated[
        str,
        typer.Option(
            "--encoding",
            help="the file's encoding: utf-8 (the default) or gbk (Excel's \"CSV\" on "
            "Chinese Windows)",
        ),
    ] = "utf-8",
) -> None:
    """Import persons from FILE: valid rows are taken, refused rows are reported; for a
    person already registered, the changes of status, scheme, region, phone and
    guardians are applied and reported (--json: "changed").

    Exit status: 0 every row taken, 2 some rows refused (the others taken), 1 nothing
    imported (every row refused, or the file refused as a whole).
    """
    encoding = encoding.strip().lower().replace("_", "-")
    encoding = "utf-8" if encoding == "utf8" else encoding
    if encoding not in ENCODINGS:
        fail(f"unknown encoding {encoding!r}: use utf-8 or gbk", code=EXIT_NOTHING_IMPORTED)
    if file.is_dir():
        fail(f"{file} is a directory, not a CSV file", code=EXIT_NOTHING_IMPORTED)
    if not file.exists():
        fail(f"no such file: {file}", code=EXIT_NOTHING_IMPORTED)
    if not file.is_file():
        fail(f"{file} is not a regular file", code=EXIT_NOTHING_IMPORTED)
    try:
        report = _run(
            ctx, file, show_progress=not as_json and console.is_terminal, encoding=encoding
        )
    except DomainError as exc:
        if exc.code == "CSV_HEADER_INVALID":
            fail(
                f"{exc.code}: the first line must be exactly `{EXPECTED_HEADER}`; "
                "nothing was imported"
            )
        domain_fail(exc)
    except (OSError, UnicodeError) as exc:
        fail(f"cannot read {file}: {exc}")
    if as_json:
        print_json(report.as_dict())
    else:
        _print_report(report)
    if report.refused:
        raise typer.Exit(EXIT_SOME_REFUSED if report.taken else EXIT_NOTHING_IMPORTED)
