"""``qinqing keys rotate``: move every vaulted value to a new master key."""

from __future__ import annotations

import os

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from qinqing.audit.actor import operator
from qinqing.identity.vault import Vault, VaultKeyError, parse_key
from qinqing.kit.cli import console, fail, print_json
from qinqing.ops import keys
from qinqing.runtime import cli_runtime

keys_app = typer.Typer(help="The master secret key.", no_args_is_help=True)

NEW_KEY_VAR = "QINQING_NEW_SECRET_KEY"


@keys_app.callback()
def _keys() -> None:
    """The master secret key."""


@keys_app.command("rotate")
def rotate_command(
    ctx: typer.Context,
    batch: int = typer.Option(1000, "--batch", min=1, max=100_000, help="rows per transaction"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Re-encrypt and re-index everything under QINQING_NEW_SECRET_KEY (never an argument).

    Stop `serve` and `worker` first. QINQING_SECRET_KEY is the current (old) key.
    Resumable: if interrupted, run the same command again.
    """
    raw = os.environ.get(NEW_KEY_VAR)
    if not raw:
        fail(f"set {NEW_KEY_VAR} to the new key (`qinqing keygen`); it is never an argument")
    try:
        new = Vault(parse_key(raw))
    except VaultKeyError as exc:
        fail(str(exc).replace("QINQING_SECRET_KEY", NEW_KEY_VAR), code=2)
    rt = cli_runtime(ctx, rotating_ok=True)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def report(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = bar.add_task(step, total=total)
                bar.update(tasks[step], completed=done, total=total)

            counts = keys.rotate(
                rt.db, rt.vault, new, rt.clock.now, batch=batch, progress=report, actor=operator()
            )
    except keys.RotationError as exc:
        fail(str(exc))
    finally:
        rt.db.dispose()
    if as_json:
        print_json({"rotated": True, "rewritten": counts})
        return
    console.print(
        "[green]key rotation finished[/]: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    console.print(
        f"Now set QINQING_SECRET_KEY to the new key, unset {NEW_KEY_VAR}, and start the "
        "service; the old key is refused from now on."
    )
