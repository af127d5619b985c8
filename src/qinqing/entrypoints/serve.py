"""`qinqing serve`: build the runtime, optionally load the demo, run uvicorn."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from qinqing.config import Settings
from qinqing.entrypoints import demo as demo_data
from qinqing.entrypoints.app import create_app, freeze_startup_heap
from qinqing.entrypoints.bootstrap import open_runtime
from qinqing.kit import metrics
from qinqing.kit.cli import fail, print_json
from qinqing.kit.logs import configure


def run(
    *,
    host: str,
    port: int,
    demo: bool,
    workers: int = 1,
    reset: bool = False,
    demo_json: bool = False,
) -> None:
    if reset:
        try:
            removed = demo_data.reset(Settings())
        except demo_data.ResetRefused as exc:
            fail(str(exc))
        names = ", ".join(path.name for path in removed) or "nothing to remove"
        print(f"demo reset: removed {names}", file=sys.stderr if demo_json else sys.stdout)
    if demo:
        # A named database is production's unless the environment says otherwise:
        # the demo's published logins must never land in it by a slip of the
        # command line. Only an explicit QINQING_ENV=development lets the demo load
        # into a named database (a developer trying it on PostgreSQL).
        if (
            os.environ.get("QINQING_DATABASE_URL")
            and os.environ.get("QINQING_ENV") != "development"
        ):
            fail(
                "--demo is refused on the database named by QINQING_DATABASE_URL: the demo's "
                "published passwords and secrets would be loaded into it. Unset "
                "QINQING_DATABASE_URL to run the demo on the embedded database, or set "
                "QINQING_ENV=development if this database is a throw-away one"
            )
        # `--demo` is development mode unless QINQING_ENV says otherwise; an explicit
        # QINQING_ENV=production is refused below. Set in the environment so worker
        # processes (--workers) see it too.
        os.environ.setdefault("QINQING_ENV", "development")
        # The demo's face checks (registration without a phone, unbinding) use the
        # simulated provider unless one is named; production refuses it anyway.
        os.environ.setdefault("QINQING_FACE_PROVIDER", "simulated")
    rt = open_runtime()
    configure(
        json_lines=rt.settings.log_json
        if rt.settings.log_json is not None
        else rt.settings.is_production
    )
    _prepare_metrics()
    if demo:
        if rt.settings.is_production:
            fail(
                "--demo is refused in production mode (QINQING_ENV=production); unset it "
                "or set QINQING_ENV=development"
            )
        created = demo_data.load(rt)
        if demo_json:
            print_json({"created": created, "logins": demo_data.login_records()})
        else:
            # Plain lines, never Rich: a table wraps at the terminal's width and would
            # split a secret across lines in an 80-column terminal or a log file.
            sys.stdout.write(demo_data.logins_text(created=created))
    # With --json, stdout holds the JSON document alone.
    print(
        f"Qinqing on http://{host}:{port}  (web app: http://{host}:{port}/login, "
        f"API docs: http://{host}:{port}/docs)",
        file=sys.stderr if demo_json else sys.stdout,
        flush=True,
    )
    grace = rt.settings.shutdown_grace_seconds
    if workers > 1:
        # Each worker builds its own runtime from the same environment.
        rt.db.dispose()
        uvicorn.run(
            "qinqing.entrypoints.asgi:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            # A child builds its runtime (imports, database, key check) before it
            # answers the supervisor's ping; on a busy host that exceeds the 5 s default.
            timeout_worker_healthcheck=60,
            # X-Forwarded-For is honoured by the app, from QINQING_TRUSTED_PROXIES only.
            proxy_headers=False,
            # SIGTERM: stop accepting, let requests under way finish for this long.
            timeout_graceful_shutdown=grace,
        )
    else:
        app = create_app(rt)
        freeze_startup_heap()
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=False,  # see above
            timeout_graceful_shutdown=grace,
        )


def _prepare_metrics() -> None:
    """The metrics directory this host's processes share (the root command pointed this
    process at it): the files of processes gone (a previous serve, finished CLI jobs)
    are removed, so a scrape sums the living; serve's worker processes inherit it."""
    path = metrics.directory()
    if path is None:
        return
    removed = metrics.clean_directory(path)
    if removed:
        logging.getLogger("qinqing.metrics").info(
            "metrics directory %s: removed %d file(s) of ended processes", path, removed
        )
