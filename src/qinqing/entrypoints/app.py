"""create_app(runtime): routers, middleware, error handlers."""

from __future__ import annotations

import gc
import hmac
import ipaddress
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security.utils import get_authorization_scheme_param
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from qinqing import __version__
from qinqing.accounting.api import router as statements_router
from qinqing.auth.api import router as auth_router
from qinqing.banks import delivery as webhook_delivery
from qinqing.banks.api import router as banks_router
from qinqing.contributions.api import router as contributions_router
from qinqing.counter.api import router as counter_router
from qinqing.family.api import router as family_router
from qinqing.http import problems
from qinqing.http.input_guard import InputGuard
from qinqing.http.middleware import RequestContext
from qinqing.http.retry import RetryConflicts
from qinqing.identity import keys
from qinqing.kit import metrics
from qinqing.notify import sender as notifications
from qinqing.notify.api import router as notify_router
from qinqing.payments.api import router as payments_router
from qinqing.payments.api import statements_router as link_payments_router
from qinqing.payments.fast import FastPath
from qinqing.payments.lane import PaymentLane
from qinqing.quota.api import router as quota_router
from qinqing.regions.api import router as regions_router
from qinqing.resident.api import router as resident_router
from qinqing.runtime import Runtime
from qinqing.unbind.api import router as unbind_router
from qinqing.vouchers.api import router as vouchers_router
from qinqing.web.install import install as install_web

API_PREFIX = "/api/v1"
# Routes that take a file (multipart): a larger body, binary content (http.input_guard).
UPLOADS = re.compile(r"(/api/v1)?/family/links/[^/]+/proof")


def freeze_startup_heap() -> None:
    """For a serving process, once its app is built: move every object made so far
    (routes, models, schemas, policies: they live as long as the process) out of
    the cyclic collector's reach. A full collection of this heap (about 200,000
    objects) takes 125-150 ms here and ran in the middle of requests, as the
    payment benchmark's p99 showed; after the freeze it takes microseconds."""
    gc.collect()
    gc.freeze()


def _api_router() -> APIRouter:
    api = APIRouter(prefix=API_PREFIX)
    for router in (
        auth_router,
        regions_router,
        family_router,
        unbind_router,
        counter_router,
        notify_router,
        payments_router,
        statements_router,
        link_payments_router,
        contributions_router,
        vouchers_router,
        resident_router,
        quota_router,
        banks_router,
    ):
        api.include_router(router)
    return api


# One router for every app this process builds: FastAPI works out a router's routes
# (their dependencies and models) when an app first includes it and reuses that for
# the next app, which then takes milliseconds instead of about 0.4 s. The API holds
# no state of its own: its routes reach the runtime through request.app.state. (The
# test suite builds an app per test.)
_API = _api_router()


def attach(app: FastAPI, runtime: Runtime) -> None:
    """Point an app at a runtime: everything the app, its middleware and its routes use
    of it is read from ``app.state`` at each request, so one app can serve one runtime
    after another (the test suite reuses its app: FastAPI works out each route's
    dependencies again for every new app, about 0.1 s of CPU)."""
    app.state.runtime = runtime
    app.state.fast_payments = FastPath.for_runtime(runtime)
    app.state.policies = runtime.policies


def create_app(runtime: Runtime) -> FastAPI:

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        fast: FastPath | None = app.state.fast_payments
        if fast is not None:
            await fast.close()
        metrics.process_done()

    app = FastAPI(
        lifespan=lifespan,
        title="Qinqing 亲情 — medical-insurance family accounts",
        version=__version__,
        description=(
            "Family accounts (医保亲情账户), family mutual aid (家庭共济) and unbinding. "
            "Errors are RFC 9457 problem+json with a stable `code`. Amounts are integer fen."
        ),
        # /docs is served below from a pinned package, never from a third-party CDN.
        docs_url=None,
        redoc_url=None,
    )
    attach(app, runtime)
    problems.install(app)
    problems.document(app)
    # Innermost: the payment fast lane answers inside the retry, guard and request-id
    # layers (qinqing.payments.lane).
    app.add_middleware(PaymentLane)
    # Added before the request-id middleware, so it runs inside it (same id per attempt).
    app.add_middleware(RetryConflicts)

    app.include_router(_API)
    # The web app's pages at / (after the API, whose error handlers it wraps).
    install_web(app)
    app.add_middleware(InputGuard, uploads=UPLOADS)
    # Outermost: even the guard's refusals get a request id and the headers.
    app.add_middleware(RequestContext)
    if runtime.settings.trusted_proxy_list:
        # Outside even that, so logs and throttling see the client the proxy names; a
        # header from any other peer is ignored (uvicorn's own handling is off).
        app.add_middleware(
            ProxyHeadersMiddleware, trusted_hosts=runtime.settings.trusted_proxy_list
        )
    _mount_docs(app)
    _mount_metrics(app)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={
            503: {"description": "The database is not reachable, or the key does not match it"}
        },
    )
    def readyz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        if not runtime.db.ping():
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"}, status_code=503
            )
        key_problem = _key_problem(runtime)
        if key_problem:
            return JSONResponse(
                {"status": "unavailable", "secret_key": key_problem}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    return app


def _key_problem(runtime: Runtime) -> str | None:

    try:
        with runtime.db.unit_of_work() as session:
            return keys.problem(session, runtime.vault)
    except Exception:
        return "the key check could not be read"


def _mount_metrics(app: FastAPI) -> None:
    """``/metrics`` (docs/operations.md "Metrics"): to a bearer of QINQING_METRICS_TOKEN
    or a client at one of QINQING_METRICS_SCRAPERS; to anyone else the 404 of a path
    that does not exist. Not in the OpenAPI schema: it is no part of the API."""

    outbox = metrics.OutboxCollector(lambda: _outbox_states(app.state.runtime))

    def allowed(request: Request) -> bool:
        settings = request.app.state.runtime.settings
        token = (settings.metrics_token or "").encode()
        scheme, given = get_authorization_scheme_param(request.headers.get("authorization"))
        if token and scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token):
            return True
        host = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(
            address in ipaddress.ip_network(n, strict=False) for n in settings.metrics_scraper_list
        )

    @app.get("/metrics", include_in_schema=False)
    def scrape(request: Request) -> Response:
        if not allowed(request):
            raise StarletteHTTPException(status_code=404)
        return Response(metrics.exposition([outbox]), media_type=metrics.CONTENT_TYPE)


def _outbox_states(runtime: Runtime) -> list[metrics.OutboxState]:
    now = runtime.clock.now()
    with runtime.db.read_only() as session:
        found = {
            "notifications": notifications.waiting(session),
            "webhooks": webhook_delivery.waiting(session),
        }
    return [
        metrics.OutboxState(name, depth, (now - oldest).total_seconds() if oldest else 0.0)
        for name, (depth, oldest) in found.items()
    ]


_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title} — API docs</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>
"""

# No inline script: the page's Content-Security-Policy allows scripts from us only.
_DOCS_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
"""
# Swagger UI sets inline styles on its elements.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI from the pinned ``swagger-ui-bundle-v2`` package (Apache-2.0)."""

    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    page = _DOCS_HTML.format(title=escape(app.title))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(_DOCS_INIT, media_type="text/javascript")
