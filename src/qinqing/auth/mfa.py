"""The staff second factor: TOTP (RFC 6238, 30-second steps, 6 digits) by pyotp.

The shared secret is kept sealed by the vault (kind ``totp_secret``) and shown
once, at enrolment, as an ``otpauth://`` URI (and a QR code of it) for an
authenticator app. A code is accepted for the current step and one step either
side (clock drift), and each step only once: the last accepted step is stored,
so a code seen over a shoulder or in a log cannot be replayed."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

SECRET_KIND = "totp_secret"  # noqa: S105 - a vault field kind, not a secret
ISSUER = "Qinqing"
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def enrolment_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def accepted_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to, if it is right for now (± drift) and newer
    than the last accepted step; else None."""
    code = code.strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def code_at(secret: str, at: datetime) -> str:
    """The code an authenticator shows at ``at`` (tests and the enrolment check)."""
    return pyotp.TOTP(secret).at(at)
