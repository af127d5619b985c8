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

To add a job, append a :class:`Job` to :data:`JOBS`. The loop itself is ``kit.jobs``.
The worker writes no audit entries per pass (that would put the chain's one
lock on a loop); what it changes records itself (payments, ledger, outbox).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select

from qinqing.accounting import clearing
from qinqing.auth import otp, registration, throttle
from qinqing.auth.models import AccessToken
from qinqing.banks import delivery
from qinqing.http import idempotency
from qinqing.kit.jobs import Job, Worker, install_signal_handlers, signals_stop, stop_requested
from qinqing.notify import sender
from qinqing.payments import service as payments
from qinqing.quota import service as quota
from qinqing.runtime import Runtime
from qinqing.vouchers import service as vouchers

__all__ = ["JOBS", "Job", "Worker", "install_signal_handlers", "signals_stop", "stop_requested"]

BATCH = 500
# Webhook receivers are outside our control: one that hangs costs its 5 s timeout
# per event, so a pass is bounded at 50 x 5 s even when every bank hangs.
WEBHOOK_BATCH = 50
# Voucher tokens live 60 s; their look-ups are kept a day so that a late scan
# still answers VOUCHER_EXPIRED rather than VOUCHER_INVALID.
VOUCHER_TOKEN_RETENTION = timedelta(days=1)


def deliver_notifications(rt: Runtime, now: datetime) -> int:
    """Send a batch of undelivered notices through the configured sender."""

    return sender.deliver(rt, BATCH)


def expire_holds(rt: Runtime, now: datetime) -> int:
    """Release holds past their region's ``hold_expiry_hours``."""

    with rt.db.unit_of_work() as session:
        return payments.expire_holds(session, now, limit=BATCH)


def return_ended_quotas(rt: Runtime, now: datetime) -> int:
    """Return to their holders what the quotas of ended links kept for payments that
    were still open when the link ended (the rest returned at the end itself)."""

    with rt.db.unit_of_work() as session:
        return quota.sweep_ended(session, now, limit=BATCH)


def clear_ledger(rt: Runtime, now: datetime) -> int:
    """Post settled payments and contributions to the institutions' and regions'
    accounts (``ledger.clearing``); how many items were cleared."""

    with rt.db.unit_of_work() as session:
        done = clearing.clear(session, now)
        return done.payments + done.contributions + done.resident_contributions


def purge_idempotency_keys(rt: Runtime, now: datetime) -> int:
    """Forget stored answers older than 24 hours."""

    with rt.db.unit_of_work() as session:
        return idempotency.purge_idempotency_keys(session, now, limit=BATCH * 10)


def purge_access_tokens(rt: Runtime, now: datetime) -> int:
    """Delete expired and revoked tokens: an unknown token is refused just the same."""

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

    with rt.db.unit_of_work() as session:
        return throttle.purge(session, rt.settings, now)


def purge_registration_codes(rt: Runtime, now: datetime) -> int:
    """Delete registration and other one-time codes that expired more than a day ago."""

    with rt.db.unit_of_work() as session:
        return registration.purge_codes(session, now) + otp.purge(session, now)


def deliver_webhooks(rt: Runtime, now: datetime) -> int:
    """Send a batch of due webhook events to the partner banks (each claim and
    each outcome is its own short transaction; the HTTP calls are outside them)."""

    return delivery.deliver_webhooks(rt, now, WEBHOOK_BATCH, stop=stop_requested)


def purge_voucher_tokens(rt: Runtime, now: datetime) -> int:
    """Drop the token look-ups of vouchers expired more than a day ago (the
    voucher rows stay as the record)."""

    with rt.db.unit_of_work() as session:
        return vouchers.purge_tokens(session, now - VOUCHER_TOKEN_RETENTION, limit=BATCH * 10)


JOBS: list[Job[Runtime]] = [
    # First: clearing writes the payment.settled notices the next job sends.
    Job("clear_ledger", clear_ledger),
    Job("deliver_notifications", deliver_notifications),
    Job("deliver_webhooks", deliver_webhooks),
    Job("expire_holds", expire_holds),
    Job("return_ended_quotas", return_ended_quotas),
    Job("purge_idempotency_keys", purge_idempotency_keys),
    Job("purge_access_tokens", purge_access_tokens),
    Job("purge_login_throttles", purge_login_throttles),
    Job("purge_registration_codes", purge_registration_codes),
    Job("purge_voucher_tokens", purge_voucher_tokens),
]
