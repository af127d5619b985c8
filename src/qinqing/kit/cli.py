"""What every CLI command shares: the runtime, the operator as an audit actor, output."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from qinqing.audit.service import Actor
from qinqing.config import Settings
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime, StartupError, build_runtime

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def operator() -> Actor:
    """CLI work is audited like an API call, with channel ``admin`` (docs/guide.md §7)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor("operator", user[:64], "admin")


def runtime(*, rotating_ok: bool = False) -> Runtime:
    from qinqing.identity.vault import VaultKeyError
    from qinqing.regions.policy import PolicyError

    try:
        return build_runtime(Settings(), rotating_ok=rotating_ok)
    except (StartupError, PolicyError, VaultKeyError) as exc:
        fail(str(exc), code=2)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def domain_fail(exc: DomainError) -> NoReturn:
    from qinqing.kit import i18n

    message, hint = i18n.text(exc.code, "en", exc.params)
    fail(f"{exc.code}: {message}" + (f" — {hint}" if hint else ""))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def run_once(rt: Runtime, fn: Callable[[Session], T], *, what: str) -> T:
    """One operator command's unit of work (run again after a conflict); a refusal
    is printed and exits 2 (``domain_fail``); the runtime is closed either way."""
    try:
        return rt.db.run(fn, what=what)
    except DomainError as exc:
        domain_fail(exc)
    finally:
        rt.db.dispose()
