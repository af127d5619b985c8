"""Why an unbind is refused: every blocker of docs/guide.md §3.3, in one pure function.

``blockers(...)`` is the single source of the unbind check. The read-only check
(``GET /family/links/{id}/unbind-check``), the submission (``POST .../unbind``),
the counter and the bank channel all call it with facts loaded by the service;
nothing here touches the database, the clock or the network.

The blockers come in a fixed order (the order of ``CODES``):

==================== ================================== =================================
code                 condition                          policy key
==================== ================================== =================================
LINK_NOT_ACTIVE      link status is not ``active``      —
NOT_A_PARTY          initiator is neither party         —
ACCOUNT_IN_ARREARS   initiator's status ``arrears``     ``unbind_blocking_statuses``
ACCOUNT_SUSPENDED    initiator's status ``suspended``   ``unbind_blocking_statuses``
ACCOUNT_TERMINATED   initiator's status ``terminated``  ``unbind_blocking_statuses``
UNSETTLED_PAYMENTS   open holds on the link             —
COOLING_OFF          too soon after binding             ``unbind_cooling_off_days``
VERIFICATION_*       the initiator did not verify       — (payment-password lockout: settings)
==================== ================================== =================================
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from babel.dates import format_date

from qinqing.kit import i18n
from qinqing.kit.clock import CHINA_TZ, china_date
from qinqing.regions.policy import Policy

# China Standard Time: one zone for the whole country, no daylight saving.

LINK_NOT_ACTIVE = "LINK_NOT_ACTIVE"
NOT_A_PARTY = "NOT_A_PARTY"
ACCOUNT_IN_ARREARS = "ACCOUNT_IN_ARREARS"
ACCOUNT_SUSPENDED = "ACCOUNT_SUSPENDED"
ACCOUNT_TERMINATED = "ACCOUNT_TERMINATED"
UNSETTLED_PAYMENTS = "UNSETTLED_PAYMENTS"
COOLING_OFF = "COOLING_OFF"
VERIFICATION_REQUIRED = "VERIFICATION_REQUIRED"
VERIFICATION_FAILED = "VERIFICATION_FAILED"
VERIFICATION_LOCKED = "VERIFICATION_LOCKED"
# Verification refusals beyond the three verification blockers: they stop a submission
# all the same (the person picked a method that cannot work for them).
FACE_UNAVAILABLE = "FACE_UNAVAILABLE"
PAYMENT_PASSWORD_NOT_SET = "PAYMENT_PASSWORD_NOT_SET"  # noqa: S105 (a code)

# Insurance status -> blocker code; a status blocks only where the policy lists it.
STATUS_BLOCKERS: Mapping[str, str] = {
    "arrears": ACCOUNT_IN_ARREARS,
    "suspended": ACCOUNT_SUSPENDED,
    "terminated": ACCOUNT_TERMINATED,
}
VERIFICATION_CODES = (
    VERIFICATION_REQUIRED,
    VERIFICATION_FAILED,
    VERIFICATION_LOCKED,
    FACE_UNAVAILABLE,
    PAYMENT_PASSWORD_NOT_SET,
)
# Every code ``blockers`` can return, in the order it returns them.
CODES = (
    LINK_NOT_ACTIVE,
    NOT_A_PARTY,
    ACCOUNT_IN_ARREARS,
    ACCOUNT_SUSPENDED,
    ACCOUNT_TERMINATED,
    UNSETTLED_PAYMENTS,
    COOLING_OFF,
    *VERIFICATION_CODES,
)


@dataclass(frozen=True, slots=True)
class LinkFacts:
    """What the rules need to know about the link."""

    status: str  # pending_consent | active | unbinding | ended
    holder_id: uuid.UUID
    member_id: uuid.UUID
    activated_at: datetime | None


@dataclass(frozen=True, slots=True)
class InitiatorFacts:
    """The person the unbind is for (the party itself, a clerk's or a bank's customer).

    ``person_id`` is None when the caller named nobody we know (a bank's
    customer ID number that matches no person): that is NOT_A_PARTY.
    ``payment_password_locked_until`` and the two ``*_available`` flags only
    matter to the read-only check: a locked payment password blocks there only
    when no other way to verify is open (face, or an ID document at the counter).
    """

    person_id: uuid.UUID | None
    insurance_status: str  # active | arrears | suspended | terminated
    payment_password_locked_until: datetime | None = None
    face_available: bool = False
    id_document_available: bool = False


@dataclass(frozen=True, slots=True)
class HoldsSummary:
    """Authorized, not yet settled or voided payments on the link."""

    count: int
    total_fen: int


@dataclass(frozen=True, slots=True)
class VerificationOutcome:
    """The result of the initiator's verification on submission.

    ``code`` is None when the person verified; otherwise one of
    ``VERIFICATION_CODES`` with the refusal's parameters.
    """

    code: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def ok(self) -> bool:
        return self.code is None


VERIFIED = VerificationOutcome()


@dataclass(frozen=True, slots=True)
class Blocker:
    code: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)


def cooling_off_until(activated_at: datetime, days: int) -> date:
    """The first day (China Standard Time) on which the link may be unbound.

    Days are calendar days as agencies count them: a link activated on
    1 March with 30 days of cooling-off may be unbound from 31 March.
    """
    return china_date(activated_at) + timedelta(days=days)


def blockers(
    link: LinkFacts,
    initiator: InitiatorFacts,
    open_holds: HoldsSummary,
    policy: Policy,
    now: datetime,
    verification: VerificationOutcome | None = None,
) -> list[Blocker]:
    """Every reason the initiator may not unbind the link now; empty means eligible.

    ``verification=None`` is the read-only check: nobody has verified yet, so
    only a verification that could not succeed (a locked payment password with
    no other method open) is reported. On submission the service passes the
    outcome of the actual verification.
    """
    found: list[Blocker] = []
    if link.status != "active":
        found.append(Blocker(LINK_NOT_ACTIVE, {"status": link.status}))

    party = initiator.person_id is not None and initiator.person_id in (
        link.holder_id,
        link.member_id,
    )
    if not party:
        found.append(Blocker(NOT_A_PARTY))

    # The initiator's own facts (insurance status, verification) only count for a
    # party: for anyone else NOT_A_PARTY is the whole story and nothing about
    # that person is shown.
    status_code = STATUS_BLOCKERS.get(initiator.insurance_status)
    blocking = initiator.insurance_status in policy.unbind_blocking_statuses
    if party and status_code is not None and blocking:
        found.append(Blocker(status_code, {"status": initiator.insurance_status}))

    if open_holds.count > 0:
        found.append(
            Blocker(
                UNSETTLED_PAYMENTS,
                {"count": open_holds.count, "total_fen": open_holds.total_fen},
            )
        )

    days = policy.unbind_cooling_off_days
    if days > 0 and link.activated_at is not None:
        until = cooling_off_until(link.activated_at, days)
        if china_date(now) < until:
            found.append(Blocker(COOLING_OFF, {"until": until.isoformat(), "days": days}))

    if party and verification is None:
        locked_until = initiator.payment_password_locked_until
        other_way = initiator.face_available or initiator.id_document_available
        if locked_until is not None and locked_until > now and not other_way:
            found.append(Blocker(VERIFICATION_LOCKED, {"locked_until": locked_until.isoformat()}))
    elif party and verification is not None and verification.code is not None:
        found.append(Blocker(verification.code, dict(verification.params)))
    return found


def eligible(found: list[Blocker]) -> bool:
    return not found


# --- rendering ----------------------------------------------------------------------------

# LINK_NOT_ACTIVE says more precisely what is going on when the catalog has a
# variant for the link's status (``LINK_NOT_ACTIVE__UNBINDING``, ...).
_VARIANT_PARAM = {LINK_NOT_ACTIVE: "status"}


def yuan(fen: int) -> str:
    """``23050`` -> ``"230.50"``: fen shown as yuan, exactly (no floats)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _babel_locale(locale: str) -> str:
    return "zh_CN" if locale == "zh-CN" else "en"


def local_day(iso: str, locale: str) -> str:
    """An ISO date as a person reads it: ``2026年12月23日`` / ``December 23, 2026``."""
    try:
        day = date.fromisoformat(iso)
    except ValueError:
        return iso
    return format_date(day, format="long", locale=_babel_locale(locale))


def local_time(iso: str, locale: str) -> str:
    """An ISO instant in Beijing time, saying so in both languages:
    ``2026年11月23日 12:00（北京时间）`` / ``November 23, 2026, 12:00 (Beijing time)``."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(CHINA_TZ)
    clock = local.strftime("%H:%M")
    if locale == "zh-CN":
        return f"{local_day(local.date().isoformat(), locale)} {clock}（北京时间）"
    return f"{local_day(local.date().isoformat(), locale)}, {clock} (Beijing time)"


def display_params(params: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """The parameters in the human form the message templates show (``total_yuan`` added)."""
    shown = dict(params)
    if isinstance(params.get("total_fen"), int):
        shown["total_yuan"] = yuan(params["total_fen"])
    if isinstance(params.get("locked_until"), str):
        shown["locked_until"] = local_time(params["locked_until"], locale)
    if isinstance(params.get("until"), str):
        shown["until"] = local_day(params["until"], locale)
    return shown


def render(blocker: Blocker, locale: str) -> dict[str, Any]:
    """``{code, message, hint, params}`` in the given locale (zh-CN or en)."""
    shown = display_params(blocker.params, locale)
    key = blocker.code
    variant = _VARIANT_PARAM.get(blocker.code)
    if variant is not None:
        candidate = f"{blocker.code}__{str(blocker.params.get(variant, '')).upper()}"
        if candidate in i18n.catalog(locale):
            key = candidate
    message, hint = i18n.text(key, locale, shown)
    return {"code": blocker.code, "message": message, "hint": hint, "params": dict(blocker.params)}


def render_all(found: list[Blocker], locale: str) -> list[dict[str, Any]]:
    return [render(b, locale) for b in found]
