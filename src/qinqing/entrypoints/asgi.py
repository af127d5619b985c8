"""ASGI entry for multi-process serving: ``uvicorn --factory qinqing.entrypoints.asgi:app_factory``.

Each worker process builds its own runtime (engine, pool, vault) from the
environment; the parent (`qinqing serve --workers N`) has already migrated.
"""

from __future__ import annotations

from fastapi import FastAPI

from qinqing.config import Settings
from qinqing.entrypoints.app import create_app, freeze_startup_heap
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.kit.logs import configure


def app_factory() -> FastAPI:
    settings = Settings()
    configure(
        json_lines=settings.log_json if settings.log_json is not None else settings.is_production
    )
    app = create_app(build_runtime(settings, migrate=False))
    freeze_startup_heap()
    return app
