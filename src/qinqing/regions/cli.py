"""``qinqing policy ...``: the effective policy of a region, explained (SPEC §4)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from qinqing.config import Settings
from qinqing.errors import DomainError
from qinqing.regions.policy import PolicyError, load_policies

policy_app = typer.Typer(help="Region policies: the effective values and where they came from.")


@policy_app.callback()
def _policy() -> None:
    """Region policies: the effective values and where they came from."""


def _show(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@policy_app.command("explain")
def explain(
    region: Annotated[str, typer.Argument(help="6-digit region code, e.g. 150600")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Print REGION's effective policy and the file that set each value."""
    settings = Settings()
    try:
        registry = load_policies(settings.policy_dir)
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        info = registry.region(region)
    except DomainError:
        typer.echo(f"unknown region: {region!r}", err=True)
        raise typer.Exit(1) from None
    values = registry.explain(region)

    if as_json:
        document = {
            "region": info.model_dump(mode="json"),
            "values": [value.model_dump(mode="json") for value in values],
        }
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
        return

    table = Table(title=f"{info.name} ({info.code})")
    table.add_column("key", no_wrap=True)
    table.add_column("value")
    table.add_column("source", overflow="fold")
    for value in values:
        table.add_row(value.key, _show(value.value), value.source)
    Console().print(table)
