"""Operators' staff management: list, disable, reset a password, enrol the second
factor (``qinqing staff …``). Each change is audited with the operator as actor,
and each ends the staff member's open sessions, so a disabled or reset account
keeps no token that still works."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth import mfa
from qinqing.auth.models import StaffUser
from qinqing.auth.passwords import Passwords
from qinqing.auth.staff_passwords import check_staff_password
from qinqing.auth.tokens import revoke_all
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime


@dataclass(frozen=True, slots=True)
class StaffRow:
    username: str
    role: str
    region_code: str
    disabled: bool
    mfa: bool
    default_password: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Enrolment:
    username: str
    uri: str


def list_staff(session: Session) -> list[StaffRow]:
    rows = session.execute(select(StaffUser).order_by(StaffUser.username)).scalars()
    return [
        StaffRow(
            s.username,
            s.role,
            s.region_code,
            s.disabled,
            s.totp_cipher is not None,
            s.default_password,
            s.created_at,
        )
        for s in rows
    ]


def _staff(session: Session, username: str) -> StaffUser:
    staff = session.execute(
        select(StaffUser).where(StaffUser.username == username.strip().lower()).with_for_update()
    ).scalar_one_or_none()
    if staff is None:
        raise DomainError("STAFF_NOT_FOUND", 404)
    return staff


def disable_staff(session: Session, rt: Runtime, username: str, *, actor: Actor) -> int:
    """Disable the account and end its sessions; the count of sessions ended."""
    staff, now = _staff(session, username), rt.clock.now()
    staff.disabled = True
    ended = revoke_all(session, "staff", str(staff.id), now)
    record(
        session,
        actor=actor,
        action="staff.disable",
        subject_kind="staff",
        subject_id=staff.id,
        at=now,
        details={"sessions_ended": ended},
    )
    return ended


def reset_password(
    session: Session, rt: Runtime, username: str, password: str, hasher: Passwords, *, actor: Actor
) -> None:
    """A new password (held to the staff rules), the demo flag cleared, sessions ended.
    The second factor stays: a forgotten password is not a lost phone."""
    staff = _staff(session, username)
    check_staff_password(password, staff.username)
    staff.password_hash = hasher.hash(password)
    staff.default_password = False
    now = rt.clock.now()
    ended = revoke_all(session, "staff", str(staff.id), now)
    record(
        session,
        actor=actor,
        action="staff.reset_password",
        subject_kind="staff",
        subject_id=staff.id,
        at=now,
        details={"sessions_ended": ended},
    )


def enrol_mfa(session: Session, rt: Runtime, username: str, *, actor: Actor) -> Enrolment:
    """A new TOTP secret (replacing any earlier one: a lost phone is re-enrolled this
    way); its URI is shown once. The staff member's sessions end, so the next login
    uses the new factor."""
    staff = _staff(session, username)
    secret = mfa.new_secret()
    staff.totp_cipher = rt.vault.encrypt(mfa.SECRET_KIND, secret)
    staff.totp_last_step = None
    now = rt.clock.now()
    revoke_all(session, "staff", str(staff.id), now)
    record(
        session,
        actor=actor,
        action="staff.mfa_enrol",
        subject_kind="staff",
        subject_id=staff.id,
        at=now,
        details={},
    )
    return Enrolment(staff.username, mfa.enrolment_uri(secret, staff.username))
