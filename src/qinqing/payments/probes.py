"""Institution probes: an authorization by two bare ID numbers that is refused for a
reason about the persons is told ``MUTUAL_AID_UNAVAILABLE`` (``payments.rules``),
counted against the institution's hour, and written to the audit log with its
real reason (ids and codes only). Past ``authorize_failures_per_hour`` such
refusals, the client's bare-ID authorizations answer 429 until the hour is over.

The count is a row of the key-based throttle table (``login_throttle``, key
``probe:<client id>``), read without a lock before the decision and locked
``FOR NO KEY UPDATE`` to count, after the payments (the lock order's step
before the audit head). The engine counts and audits in its transaction;
``fast_path.sql`` counts in the function's, and the fast path then writes the
audit entry with :func:`audit_probes` in a transaction of its own (the audit
chain's key never reaches the database).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.audit import service as audit
from qinqing.auth.models import LoginThrottle
from qinqing.auth.throttle import locked_counter
from qinqing.payments import rules
from qinqing.runtime import Runtime

REFUSED = "payment.authorize_refused"
THROTTLED = "payment.authorize_throttled"


@dataclass(frozen=True, slots=True)
class Probe:
    """A bare-ID authorization told UNAVAILABLE: its real reason and the rows it named
    (None where a person was not found, or there is no link)."""

    code: str
    holder_id: uuid.UUID | None
    member_id: uuid.UUID | None
    link_id: uuid.UUID | None


def key(client_id: str) -> str:
    return f"probe:{client_id}"


def shown_since(rt: Runtime, now: datetime) -> datetime:
    """Vouchers shown after this let their institution see the real refusals."""
    return now - timedelta(hours=rt.settings.authorize_voucher_hours)


def window(session: Session, client_id: str, now: datetime) -> tuple[int, datetime]:
    """The client's (failures, start) in its current window, read without a lock."""
    row = session.execute(
        select(LoginThrottle.failures, LoginThrottle.window_started_at).where(
            LoginThrottle.key == key(client_id)
        )
    ).one_or_none()
    if row is None:
        return rules.probe_window(None, None, now)
    return rules.probe_window(row.failures, row.window_started_at, now)


def count(session: Session, rt: Runtime, client_id: str, n: int, now: datetime) -> int:
    """Count ``n`` probes of the client (its counter locked); its failures in the
    window after them. At the limit the row's ``locked_until`` says when the window
    ends (for an operator: the decision reads the failures and the start)."""
    row = locked_counter(session, key(client_id), now)
    failures, started = rules.probe_window(row.failures, row.window_started_at, now)
    failures += n
    row.failures, row.window_started_at, row.last_failure_at = failures, started, now
    limit = rt.settings.authorize_failures_per_hour
    row.locked_until = started + rules.PROBE_WINDOW if failures >= limit else None
    session.flush()
    return failures


def audit_probes(
    session: Session,
    rt: Runtime,
    principal: Principal,
    probes: list[Probe],
    failures_after: int,
    now: datetime,
) -> None:
    """One audit entry per probe, with its real reason and the window's count after
    it, and one more when the count reaches the limit."""
    limit = rt.settings.authorize_failures_per_hour
    failures = failures_after - len(probes)
    for p in probes:
        failures += 1
        audit.record(
            session,
            actor=principal.actor,
            action=REFUSED,
            subject_kind="api_client",
            subject_id=principal.id,
            at=now,
            details={
                "code": p.code,
                "answered": rules.UNAVAILABLE,
                "holder_id": _id(p.holder_id),
                "member_id": _id(p.member_id),
                "link_id": _id(p.link_id),
                "failures": failures,
            },
        )
        if failures == limit:
            audit.record(
                session,
                actor=principal.actor,
                action=THROTTLED,
                subject_kind="api_client",
                subject_id=principal.id,
                at=now,
                details={"failures": failures, "limit": limit},
            )


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
