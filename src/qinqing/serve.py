"""`qinqing serve`: build the runtime, optionally load the demo, run uvicorn."""

from __future__ import annotations

import uvicorn
from rich.table import Table

from qinqing.cli_support import console, fail, runtime


def run(*, host: str, port: int, demo: bool, workers: int = 1) -> None:
    from qinqing import demo as demo_data
    from qinqing.app import create_app
    from qinqing.logging_setup import configure

    rt = runtime()
    configure(
        json_lines=rt.settings.log_json
        if rt.settings.log_json is not None
        else rt.settings.is_production
    )
    if demo:
        if rt.settings.is_production:
            fail(
                "--demo is refused in production mode (unset QINQING_DATABASE_URL or set "
                "QINQING_ENV=development)"
            )
        created = demo_data.load(rt)
        table = Table(title="Demo logins" + ("" if created else " (already loaded)"))
        for col in ("who", "login", "password / secret", "note"):
            table.add_column(col, overflow="fold")
        for row in demo_data.logins():
            table.add_row(*row)
        console.print(table)
        console.print("ID numbers and phones above are fictitious demo data.")
    console.print(
        f"Qinqing on http://{host}:{port}  (web app: http://{host}:{port}/login, "
        f"API docs: http://{host}:{port}/docs)"
    )
    if workers > 1:
        # Each worker builds its own runtime from the same environment.
        rt.db.dispose()
        uvicorn.run(
            "qinqing.asgi:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
        )
    else:
        uvicorn.run(create_app(rt), host=host, port=port, log_config=None, access_log=False)
