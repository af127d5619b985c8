"""Prometheus metrics: every definition, and the plumbing (docs/operations.md "Metrics").

Domains count through the small functions below (``payment``, ``unbind``,
``binding``, ``webhook_delivery``, ``on_commit`` ...) and never touch a metric
object, the HTTP layer or the entry points; the HTTP middleware, the worker
loop and the database pool use the same module. Labels are bounded sets of
codes, route templates and names chosen here: never a raw path, an id or
anything about a person.

Multiprocess mode. Every qinqing process on a host (serve's workers, the
worker, CLI jobs) writes its values into one directory (``QINQING_METRICS_DIR``,
default ``metrics/`` in the data directory): :func:`record_to` points
``PROMETHEUS_MULTIPROC_DIR`` there before the first value exists, and a scrape
(:func:`exposition`) merges the files of every process, so one scrape of any
serving process answers for them all. ``serve`` removes the files of processes
that are gone (:func:`clean_directory`) before it starts. Without a directory
(``QINQING_METRICS_DIR`` set empty, or a process that never called
:func:`record_to`, as the test suite's in-process app) the values live in this
process's memory and a scrape shows them alone.

The values are made lazily (:func:`_m`), on first use: the client library picks
the in-memory or the file-backed kind when a value is created, so the choice
must come before.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from qinqing.config import Settings
from qinqing.kit.errors import DomainError

log = logging.getLogger("qinqing.metrics")
P = ParamSpec("P")

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
# 1 ms ... 10 s (docs/operations.md "Metrics").
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A worker job runs from microseconds (nothing to do) to minutes (a webhook batch
# against hanging banks is bounded at 50 x 5 s).
WORKER_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# The label value of a request no route matched (never its path).
UNMATCHED = "unmatched"
# Where the payment lane (which answers before routing) names its route template.
ROUTE_KEY = "qinqing.route"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CHANNELS = frozenset({"app", "wechat", "web", "counter", "review", "admin", "bank", "api"})
_CODE = re.compile(r"[A-Za-z0-9_.]{1,64}")

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class _Metrics:
    """The metric objects of this process (see :func:`_m`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "qinqing_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "qinqing_http_request_duration_seconds",
            "Time from a request's arrival to its answer's end, by route template and method.",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.payments = Counter(
            "qinqing_payments",
            "Payment operations decided (authorize, settle, void), by outcome: ok or the "
            "refusal code.",
            ["operation", "outcome"],
            registry=r,
        )
        self.unbinds = Counter(
            "qinqing_unbinds",
            "Unbind requests decided, by channel and outcome (completed, pending_review, "
            "or the refusal code).",
            ["channel", "outcome"],
            registry=r,
        )
        self.bindings = Counter(
            "qinqing_bindings",
            "Bindings asked for, by outcome (the new link's status, or the refusal code).",
            ["outcome"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "qinqing_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, retrying, failed).",
            ["outcome"],
            registry=r,
        )
        self.worker_pass = Histogram(
            "qinqing_worker_pass_seconds",
            "Time one worker job took in one pass, by job.",
            ["job"],
            buckets=WORKER_BUCKETS,
            registry=r,
        )
        self.pool_in_use = Gauge(
            "qinqing_db_pool_in_use",
            "Database connections checked out of the pools (all processes).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_waiting = Gauge(
            "qinqing_db_pool_waiting",
            "Callers waiting for a pooled database connection (all processes).",
            registry=r,
            multiprocess_mode="livesum",
        )


_current: _Metrics | None = None
_lock = threading.Lock()


def _m() -> _Metrics:
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                path = directory()
                if path is not None:
                    _private_dirs(path)
                _current = _Metrics()
    return _current


# --- the directory (multiprocess mode) --------------------------------------------------


def directory() -> Path | None:
    """The multiprocess directory this process records into, or None (in memory)."""
    raw = os.environ.get(ENV_DIR)
    return Path(raw) if raw else None


def record_to(path: Path | None, *, join_only: bool = False) -> None:
    """Record this process's values into ``path`` (None: in memory), made (mode 0700)
    when the first value is. ``join_only``: only if the directory is there already (a
    CLI job on a host where ``serve`` runs; elsewhere it leaves no directory behind).
    Must come before the first value; later (values exist already) it changes nothing."""
    if _current is not None:
        if path != directory():
            log.debug("metrics already recording; %s not used", path)
        return
    if path is not None and join_only and not path.is_dir():
        return
    if path is None:
        os.environ.pop(ENV_DIR, None)
    else:
        os.environ[ENV_DIR] = str(path)
        atexit.register(process_done)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def record_as_configured(*, join_only: bool = False) -> None:
    """:func:`record_to` the directory the settings name (``QINQING_METRICS_DIR``, else
    ``metrics/`` in the data directory; set empty: in memory). Settings that do not
    validate change nothing: the command reports them when it reads them."""
    try:
        settings = Settings()
    except ValidationError:
        return
    path = settings.effective_metrics_dir
    record_to(path.resolve() if path is not None else None, join_only=join_only)


def _private_dirs(path: Path) -> None:
    """``path`` and any missing parent, each made readable by its owner only."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for level in reversed(missing):
        level.mkdir(mode=0o700, exist_ok=True)
        level.chmod(0o700)


_PID_FILE = re.compile(r"_(\d+)\.db$")


def clean_directory(path: Path) -> int:
    """Remove the files of processes that are no longer running (a previous serve's
    workers, finished CLI jobs); those of a running worker stay. How many went."""
    removed = 0
    if not path.is_dir():
        return 0
    for file in path.glob("*.db"):
        found = _PID_FILE.search(file.name)
        if found is None or _alive(int(found.group(1))):
            continue
        file.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_done() -> None:
    """This process is ending: its live gauges (pool use) leave the sums."""
    path = directory()
    if path is not None:
        multiprocess.mark_process_dead(os.getpid(), str(path))  # type: ignore[no-untyped-call]


# --- the scrape -------------------------------------------------------------------------


class _Own:
    """This process's in-memory metrics, as a collector of the scrape's registry."""

    def describe(self) -> list[object]:
        return []

    def collect(self) -> Iterable[prometheus_client.Metric]:
        return _m().registry.collect()


def exposition(collectors: Iterable[Collector] = ()) -> bytes:
    """The scrape in the Prometheus text format: every process's values (multiprocess
    mode) or this one's, plus ``collectors`` read now (the outbox)."""
    registry = CollectorRegistry(auto_describe=False)
    path = directory()
    _m()  # the pool gauges exist from the first scrape on
    if path is not None:
        multiprocess.MultiProcessCollector(registry, str(path))  # type: ignore[no-untyped-call]
    else:
        registry.register(_Own())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


@dataclass(frozen=True, slots=True)
class OutboxState:
    """One outbox at scrape time: rows waiting and the age of the oldest, in seconds."""

    outbox: str
    depth: int
    oldest_age_seconds: float


class OutboxCollector:
    """``qinqing_outbox_depth`` and ``qinqing_outbox_oldest_age_seconds``, read from the
    database at scrape time by ``read``: the truth even when no worker runs (the
    moment the alert matters), and the same whichever process is scraped."""

    def __init__(self, read: Callable[[], Iterable[OutboxState]]) -> None:
        self.read = read

    def describe(self) -> list[prometheus_client.Metric]:
        return []

    def collect(self) -> Iterator[prometheus_client.Metric]:
        depth = GaugeMetricFamily(
            "qinqing_outbox_depth", "Outbox rows waiting to be sent.", labels=["outbox"]
        )
        age = GaugeMetricFamily(
            "qinqing_outbox_oldest_age_seconds",
            "Age of the oldest row waiting, in seconds (0 when none waits).",
            labels=["outbox"],
        )
        try:
            states = list(self.read())
        except Exception:
            log.warning("outbox metrics could not be read", exc_info=True)
            return
        for state in states:
            depth.add_metric([state.outbox], state.depth)
            age.add_metric([state.outbox], max(0.0, state.oldest_age_seconds))
        yield depth
        yield age


# --- what the code counts --------------------------------------------------------------


def code(value: str | None) -> str:
    """A label value from a stable code (a refusal code, a status), or ``other``."""
    return value if value is not None and _CODE.fullmatch(value) else "other"


def _never_fails(count: Callable[P, None]) -> Callable[P, None]:
    """A metric that cannot be recorded (a full disk under the multiprocess directory)
    is logged, never the failure of the request or job that counted it."""

    @functools.wraps(count)
    def safe(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            count(*args, **kwargs)
        except Exception:
            log.warning("metric %s not recorded", count.__name__, exc_info=True)

    return safe


@_never_fails
def http_request(route: str | None, method: str, status: int, seconds: float) -> None:
    m = _m()
    label_route = route or UNMATCHED
    label_method = method if method in _METHODS else "other"
    m.http_requests.labels(label_route, label_method, str(status)).inc()
    m.http_duration.labels(label_route, label_method).observe(seconds)


@_never_fails
def payment(operation: str, outcome: str | None) -> None:
    """One payment operation decided: ``outcome`` None (done) or its refusal code."""
    _m().payments.labels(operation, "ok" if outcome is None else code(outcome)).inc()


@_never_fails
def unbind(channel: str, outcome: str) -> None:
    _m().unbinds.labels(channel if channel in _CHANNELS else "other", code(outcome)).inc()


@_never_fails
def binding(outcome: str) -> None:
    _m().bindings.labels(code(outcome)).inc()


@_never_fails
def webhook_delivery(outcome: str) -> None:
    _m().webhook_deliveries.labels(code(outcome)).inc()


@_never_fails
def worker_job(job: str, seconds: float) -> None:
    _m().worker_pass.labels(code(job)).observe(seconds)


@_never_fails
def pool_checked_out(delta: int) -> None:
    _m().pool_in_use.inc(delta)


@contextmanager
def pool_wait() -> Iterator[None]:
    """Around the wait for a pooled connection."""
    _pool_waiting(1)
    try:
        yield
    finally:
        _pool_waiting(-1)


@_never_fails
def _pool_waiting(delta: int) -> None:
    _m().pool_waiting.inc(delta)


@contextmanager
def refusals(count: Callable[[str], None]) -> Iterator[None]:
    """Count a refusal (a DomainError) leaving the block by its code, then let it go on."""
    try:
        yield
    except DomainError as exc:
        count(exc.code)
        raise


_PENDING = "qinqing_metrics_on_commit"


def on_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's transaction commits; never if it rolls back
    (a conflict's retry runs the unit of work again and counts then)."""
    pending: list[Callable[[], None]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _run_pending)
        event.listen(session, "after_soft_rollback", _drop_pending)
    pending.append(action)


def _run_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the transaction itself goes on
    for action in session.info.pop(_PENDING, []):
        try:
            action()
        except Exception:
            log.warning("a metric could not be recorded", exc_info=True)
    session.info[_PENDING] = []


def _drop_pending(session: Session, previous: SessionTransaction) -> None:
    if previous.nested or previous.parent is not None:
        return  # a savepoint rolled back; the outer transaction goes on
    session.info[_PENDING] = []
