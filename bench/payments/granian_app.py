"""The service's app for Granian, which imports an app rather than calling a factory
(``python -m bench.payments --server granian``): each Granian worker process that
imports this builds its own runtime, as ``qinqing serve --workers N`` does."""

from __future__ import annotations

from qinqing.entrypoints.asgi import app_factory

app = app_factory()
