"""`qinqing notify ...` commands."""

from __future__ import annotations

import typer

notify_app = typer.Typer(help="Notifications outbox.", no_args_is_help=True)
