"""`qinqing worker [--once]`: one process for the background jobs.

A pass runs each job of :data:`JOBS` once, in order; each job is a plain
function ``(runtime, now) -> count`` that does a bounded amount of work in its
own transaction(s) and says how much it did. The loop repeats at once while
any job found work and sleeps ``interval`` seconds when none did. SIGTERM or
SIGINT asks it to stop: the job under way finishes (its transaction commits),
no further job starts, and the process exits 0. A job whose batch is long (the
webhook delivery waits on banks) asks :func:`stop_requested` between items and
ends its batch early.

Several workers may run side by side (on several hosts too): the notification
outbox is claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers
never take the same notice; hold expiry skips payments another transaction
holds; webhook events are claimed like notices; purges are plain deletes. On
SQLite, writers are serialized anyway.

To add a job, append a :class:`Job` to :data:`JOBS`.
The worker writes no audit entries per pass (that would put the chain's one
lock on a loop); what it changes records itself (payments, ledger, outbox).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType

from sqlalchemy import delete, or_, select

from qinqing.runtime import Runtime

log = logging.getLogger("qinqing.worker")

BATCH = 500
# Webhook receivers are outside our control: one that hangs costs its 5 s timeout
# per event, so a pass is bounded at 50 x 5 s even when every bank hangs.
WEBHOOK_BATCH = 50
# Voucher tokens live 60 s; their look-ups are kept a day so that a late scan
# still answers VOUCHER_EXPIRED rather than VOUCHER_INVALID.
VOUCHER_TOKEN_RETENTION = timedelta(days=1)


# The stop event of the worker running the current job (None outside a worker).
_stopping: ContextVar[threading.Event | None] = ContextVar("qinqing_worker_stopping", default=None)


def stop_requested() -> bool:
    """True once the worker running this job has been asked to stop."""
    event = _stopping.get()
    return event is not None and event.is_set()


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    run: Callable[[Runtime, datetime], int]


def deliver_notifications(rt: Runtime, now: datetime) -> int:
    """Send a batch of undelivered notices through the configured sender."""
    from qinqing.notify.sender import deliver

    return deliver(rt, BATCH)


def expire_holds(rt: Runtime, now: datetime) -> int:
    """Release holds past their region's ``hold_expiry_hours``."""
    from qinqing.payments.service import expire_holds as expire

    with rt.db.unit_of_work() as session:
        return expire(session, now, limit=BATCH)


def clear_ledger(rt: Runtime, now: datetime) -> int:
    """Post settled payments and contributions to the institutions' and regions'
    accounts (``ledger.clearing``); how many items were cleared."""
    from qinqing.ledger.clearing import clear

    with rt.db.unit_of_work() as session:
        done = clear(session, now)
        return done.payments + done.contributions


def purge_idempotency_keys(rt: Runtime, now: datetime) -> int:
    """Forget stored answers older than 24 hours."""
    from qinqing.http.idempotency import purge_idempotency_keys as purge

    with rt.db.unit_of_work() as session:
        return purge(session, now, limit=BATCH * 10)


def purge_access_tokens(rt: Runtime, now: datetime) -> int:
    """Delete expired and revoked tokens: an unknown token is refused just the same."""
    from qinqing.auth.models import AccessToken

    with rt.db.unit_of_work() as session:
        doomed = list(
            session.execute(
                select(AccessToken.token_hash)
                .where(or_(AccessToken.expires_at <= now, AccessToken.revoked_at.is_not(None)))
                .limit(BATCH * 10)
            ).scalars()
        )
        if doomed:
            session.execute(delete(AccessToken).where(AccessToken.token_hash.in_(doomed)))
        return len(doomed)


def purge_login_throttles(rt: Runtime, now: datetime) -> int:
    """Delete login and SMS counters that can no longer hold anyone back."""
    from qinqing.auth.throttle import purge

    with rt.db.unit_of_work() as session:
        return purge(session, rt.settings, now)


def purge_registration_codes(rt: Runtime, now: datetime) -> int:
    """Delete registration codes that expired more than a day ago."""
    from qinqing.auth.registration import purge_codes

    with rt.db.unit_of_work() as session:
        return purge_codes(session, now)


def deliver_webhooks(rt: Runtime, now: datetime) -> int:
    """Send a batch of due webhook events to the partner banks (each claim and
    each outcome is its own short transaction; the HTTP calls are outside them)."""
    from qinqing.banks.webhooks import deliver_webhooks as deliver

    return deliver(rt, now, WEBHOOK_BATCH, stop=stop_requested)


def purge_voucher_tokens(rt: Runtime, now: datetime) -> int:
    """Drop the token look-ups of vouchers expired more than a day ago (the
    voucher rows stay as the record)."""
    from qinqing.vouchers.service import purge_tokens

    with rt.db.unit_of_work() as session:
        return purge_tokens(session, now - VOUCHER_TOKEN_RETENTION, limit=BATCH * 10)


JOBS: list[Job] = [
    # First: clearing writes the payment.settled notices the next job sends.
    Job("clear_ledger", clear_ledger),
    Job("deliver_notifications", deliver_notifications),
    Job("deliver_webhooks", deliver_webhooks),
    Job("expire_holds", expire_holds),
    Job("purge_idempotency_keys", purge_idempotency_keys),
    Job("purge_access_tokens", purge_access_tokens),
    Job("purge_login_throttles", purge_login_throttles),
    Job("purge_registration_codes", purge_registration_codes),
    Job("purge_voucher_tokens", purge_voucher_tokens),
]


class Worker:
    def __init__(
        self, rt: Runtime, jobs: Sequence[Job] | None = None, *, interval: float = 2.0
    ) -> None:
        self.rt = rt
        self.jobs = list(JOBS if jobs is None else jobs)
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
                try:
                    done[job.name] = job.run(self.rt, self.rt.clock.now())
                except Exception:
                    log.exception("job %s failed", job.name)
                    done[job.name] = -1
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


def install_signal_handlers(worker: Worker) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current job", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
