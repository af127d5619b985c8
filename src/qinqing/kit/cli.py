"""What every CLI command shares: output, failure exits, one unit of work.

A command's runtime comes from ``runtime.cli_runtime`` (the root command's
wiring), its audit actor from ``audit.actor.operator``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from qinqing.kit import i18n
from qinqing.kit.db import Database
from qinqing.kit.errors import DomainError

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def domain_fail(exc: DomainError) -> NoReturn:
    message, hint = i18n.text(exc.code, "en", exc.params)
    fail(f"{exc.code}: {message}" + (f" — {hint}" if hint else ""))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def run_once(db: Database, fn: Callable[[Session], T], *, what: str) -> T:
    """One operator command's unit of work (run again after a conflict); a refusal
    is printed and exits 2 (``domain_fail``); the database is closed either way."""
    try:
        return db.run(fn, what=what)
    except DomainError as exc:
        domain_fail(exc)
    finally:
        db.dispose()
