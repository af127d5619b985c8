"""A loop of background jobs, run in passes (``qinqing worker``, ``webhooks deliver``).

A pass runs each :class:`Job` once, in order; a job is a plain function
``(context, now) -> count`` that does a bounded amount of work in its own
transaction(s) and says how much it did. The loop repeats at once while any job
found work and sleeps ``interval`` seconds when none did. SIGTERM or SIGINT asks
it to stop: the job under way finishes (its transaction commits), no further job
starts, and the process exits 0. A job whose batch is long asks
:func:`stop_requested` between items and ends its batch early.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Generic, Protocol, TypeVar

from qinqing.kit import metrics

log = logging.getLogger("qinqing.worker")


class _HasClock(Protocol):
    def now(self) -> datetime: ...


class Context(Protocol):
    """What a job runs with (the runtime): only its clock is read here."""

    @property
    def clock(self) -> _HasClock: ...


C = TypeVar("C", bound=Context)

# The stop event of the worker running the current job (None outside a worker).
_stopping: ContextVar[threading.Event | None] = ContextVar("qinqing_worker_stopping", default=None)


def stop_requested() -> bool:
    """True once the worker running this job has been asked to stop."""
    event = _stopping.get()
    return event is not None and event.is_set()


@dataclass(frozen=True, slots=True)
class Job(Generic[C]):
    name: str
    run: Callable[[C, datetime], int]


class Worker(Generic[C]):
    def __init__(self, rt: C, jobs: Sequence[Job[C]], *, interval: float = 2.0) -> None:
        self.rt = rt
        self.jobs = list(jobs)
        self.interval = interval
        self.stopping = threading.Event()
        self.passes = 0

    def run_once(self) -> dict[str, int]:
        """One pass over the jobs; what each did. A failing job is logged and
        counted as -1; the others still run."""
        done: dict[str, int] = {}
        token = _stopping.set(self.stopping)
        try:
            for job in self.jobs:
                if self.stopping.is_set():
                    break
                started = time.perf_counter()
                try:
                    done[job.name] = job.run(self.rt, self.rt.clock.now())
                except Exception:
                    log.exception("job %s failed", job.name)
                    done[job.name] = -1
                metrics.worker_job(job.name, time.perf_counter() - started)
        finally:
            _stopping.reset(token)
        self.passes += 1
        return done

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def run_forever(self) -> None:
        log.info("worker started: %s", ", ".join(j.name for j in self.jobs))
        while not self.stopping.is_set():
            done = self.run_once()
            if any(n > 0 for n in done.values()):
                log.info("worker pass: %s", ", ".join(f"{k}={v}" for k, v in done.items() if v))
                continue  # more may be waiting: drain before sleeping
            self.stopping.wait(self.interval)
        log.info("worker stopped after %d pass(es)", self.passes)


def install_signal_handlers(worker: Worker[C]) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current job", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@contextmanager
def signals_stop(worker: Worker[C]) -> Iterator[None]:
    """SIGTERM and SIGINT stop ``worker`` as in :func:`install_signal_handlers` while the
    block runs (a ``--once`` pass); the handlers before are put back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; nothing to install
        return
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    install_signal_handlers(worker)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
