"""create_app(runtime): routers, middleware, error handlers."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from qinqing import __version__, problems
from qinqing.input_guard import InputGuard
from qinqing.logging_setup import request_id_var
from qinqing.retry import RetryConflicts
from qinqing.runtime import Runtime

log = logging.getLogger("qinqing.http")

API_PREFIX = "/api/v1"


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Qinqing 亲情 — medical-insurance family accounts",
        version=__version__,
        description=(
            "Family accounts (医保亲情账户), family mutual aid (家庭共济) and unbinding. "
            "Errors are RFC 9457 problem+json with a stable `code`. Amounts are integer fen."
        ),
    )
    app.state.runtime = runtime
    app.state.policies = runtime.policies
    problems.install(app)
    problems.document(app)
    # Added before the request-id middleware, so it runs inside it (same id per attempt).
    app.add_middleware(RetryConflicts)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id", "")
        if not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
            rid = uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        try:
            response = await call_next(request)
            response.headers["X-Request-Id"] = rid
            # Paths carry opaque ids only, never personal data (SPEC §5).
            log.info(
                "%s %s %s %.1fms",
                request.method,
                request.url.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        finally:
            request_id_var.reset(token)
        return response

    from qinqing.auth.api import router as auth_router
    from qinqing.family.api import router as family_router
    from qinqing.ledger.api import router as ledger_router
    from qinqing.ledger.payments_api import router as payments_router
    from qinqing.ledger.statements_api import router as statements_router
    from qinqing.notify.api import router as notify_router
    from qinqing.regions.api import router as regions_router
    from qinqing.unbind.api import router as unbind_router

    api = APIRouter(prefix=API_PREFIX)
    for router in (
        auth_router,
        regions_router,
        family_router,
        unbind_router,
        notify_router,
        payments_router,
        statements_router,
        ledger_router,
    ):
        api.include_router(router)
    app.include_router(api)
    app.add_middleware(InputGuard)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={503: {"description": "The database is not reachable"}},
    )
    def readyz() -> JSONResponse:
        if runtime.db.ping():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)

    return app
