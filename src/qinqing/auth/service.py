"""Accounts and auth use cases: register, login, logout, tokens, staff, API clients,
and the payment password with its lockout (docs/guide.md §3.3 "Verification", §5.1)."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qinqing.access.principal import CLIENT_SCOPES, STAFF_CHANNEL, Principal
from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth import mfa, sessions, throttle
from qinqing.auth.events import PASSWORD_CHANGED, AccountNotice
from qinqing.auth.models import AccessToken, AccountLogin, ApiClient, PersonAccount, StaffUser
from qinqing.auth.passwords import Passwords
from qinqing.auth.payment_password_rules import check_payment_password
from qinqing.auth.staff_passwords import check_staff_password
from qinqing.auth.tokens import new_token, token_digest
from qinqing.config import Env
from qinqing.identity import ric
from qinqing.identity.phone import normalize_phone
from qinqing.kit.errors import DomainError
from qinqing.persons.models import Person
from qinqing.persons.service import PHONE_KIND, find_by_id_number
from qinqing.runtime import Runtime

STAFF_ROLES = ("clerk", "reviewer", "admin")
CLIENT_KINDS = tuple(CLIENT_SCOPES)
PERSON_CHANNELS = ("app", "wechat")
_USERNAME = re.compile(r"[a-z][a-z0-9_.-]{2,31}")
_PAYMENT_PASSWORD = re.compile(r"\d{6}")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str | None = None


def passwords(rt: Runtime) -> Passwords:
    # One hasher per runtime: building it hashes a dummy secret.
    cached = getattr(rt, "_passwords", None)
    if cached is None:
        cached = Passwords(rt.settings)
        rt._passwords = cached  # type: ignore[attr-defined]
    return cached


def check_password_strength(password: str) -> None:
    if len(password) < 8 or len(password) > 128:
        raise DomainError("WEAK_PASSWORD", 422)
    if not (re.search(r"[A-Za-z]", password) and re.search(r"\d", password)):
        raise DomainError("WEAK_PASSWORD", 422)


def _issue(
    session: Session,
    rt: Runtime,
    kind: str,
    subject_id: str,
    channel: str,
    ttl: int,
    scopes: str = "",
    person_id: uuid.UUID | None = None,
) -> IssuedToken:
    token = new_token()
    now = rt.clock.now()
    session.add(
        AccessToken(
            token_hash=token_digest(token),
            subject_kind=kind,
            subject_id=subject_id,
            person_id=person_id,
            channel=channel,
            scopes=scopes,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    session.flush()
    return IssuedToken(token, ttl, scopes or None)


# --- persons ---------------------------------------------------------------


def create_account(
    session: Session,
    rt: Runtime,
    *,
    person_id: uuid.UUID,
    mobile: str,
    password_hash: str,
    now: datetime,
) -> PersonAccount:
    """Insert a person's app account; the caller has proven who the person is.

    The password is hashed by the caller, before the transaction (SQLite holds
    its write lock for the whole transaction).
    """
    if session.execute(
        select(PersonAccount.id).where(PersonAccount.person_id == person_id)
    ).first():
        raise DomainError("ACCOUNT_EXISTS", 409)
    login_index = rt.vault.index(PHONE_KIND, mobile)
    if session.execute(
        select(AccountLogin.account_id).where(AccountLogin.login_index == login_index)
    ).first():
        raise DomainError("PHONE_IN_USE", 409)
    account = PersonAccount(
        person_id=person_id,
        login_index=login_index,
        phone_cipher=rt.vault.encrypt(PHONE_KIND, mobile),
        password_hash=password_hash,
        payment_failures=0,
        created_at=now,
    )
    try:
        # Two registrations racing for one person or one phone: the loser gets the
        # same answer as if it had come second, never a 500.
        with session.begin_nested():
            session.add(account)
            session.flush()
    except IntegrityError:
        taken = session.execute(
            select(PersonAccount.id).where(PersonAccount.person_id == person_id)
        ).first()
        raise DomainError("ACCOUNT_EXISTS" if taken else "PHONE_IN_USE", 409) from None
    record(
        session,
        actor=Actor("person", str(account.id), "app"),
        action="account.register",
        subject_kind="person",
        subject_id=person_id,
        at=now,
    )
    return account


def open_account(
    session: Session, rt: Runtime, *, id_number: str, name: str, phone: str, password: str
) -> PersonAccount:
    """Create an account with no proof of possession: only for the demo loader.

    People register through ``registration.register`` (an SMS code or a face check).
    """
    now = rt.clock.now()
    mobile = normalize_phone(phone)
    if mobile is None:
        raise DomainError("PHONE_INVALID", 422)
    password_hash = passwords(rt).hash(password)
    person = find_by_id_number(session, rt.vault, ric.parse(id_number, now.date()).number)
    if person is None or person.name != name.strip():
        raise DomainError("REGISTRY_MISMATCH", 422)
    return create_account(
        session, rt, person_id=person.id, mobile=mobile, password_hash=password_hash, now=now
    )


@dataclass(frozen=True, slots=True)
class _LoginSubject:
    kind: str  # person | staff
    id: uuid.UUID
    password_hash: str
    role: str | None = None
    person_id: uuid.UUID | None = None
    totp_cipher: bytes | None = None


def _second_factor(
    session: Session, rt: Runtime, subject: _LoginSubject, totp: str | None, now: datetime
) -> str | None:
    """For staff: the refusal code when the second factor is missing or wrong, after
    the password was right (recording the accepted step); None when it passes. In
    production every staff login needs it; elsewhere only an enrolled account."""
    if subject.kind != "staff":
        return None
    if subject.totp_cipher is None:
        return "STAFF_MFA_NOT_ENROLLED" if rt.settings.env is Env.production else None
    if not totp:
        return "TOTP_REQUIRED"
    staff = session.execute(
        select(StaffUser).where(StaffUser.id == subject.id).with_for_update()
    ).scalar_one()
    if staff.totp_cipher is None:  # un-enrolled meanwhile: the password decides
        return None
    secret = rt.vault.decrypt(mfa.SECRET_KIND, staff.totp_cipher)
    step = mfa.accepted_step(secret, totp, now, staff.totp_last_step)
    if step is None:
        return "TOTP_INVALID"
    staff.totp_last_step = step
    return None


def login(
    rt: Runtime,
    *,
    login: str,
    password: str,
    source: str,
    channel: str = "app",
    totp: str | None = None,
) -> IssuedToken:
    """Three steps, so the slow hash never runs inside a write transaction:
    read the throttle and the account, verify outside any transaction, then a
    short write records the outcome. A staff login also needs its second factor
    (``totp``); a missing or wrong one counts as a failed login, so the answer
    that the password was right is worth no more guesses than before."""
    settings, now = rt.settings, rt.clock.now()
    mobile = normalize_phone(login)
    ident = mobile if mobile else login.strip().lower()
    acct_key = throttle.account_key(rt.vault, ident)
    addr_key = throttle.address_key(rt.vault, source)
    keys = [acct_key, addr_key]

    with rt.db.read_only() as session:
        wait = throttle.wait_for(session, keys, now)
        if wait:
            raise DomainError("LOGIN_LOCKED", 429, retry_after=wait)
        subject = _login_subject(session, rt, mobile, ident)

    pw = passwords(rt)
    # Always one verification: against a dummy hash when there is no such login,
    # so a miss costs the same time as a wrong password.
    ok = pw.verify(subject.password_hash if subject else None, password) and subject is not None
    rehashed = (
        pw.hash(password) if ok and subject and pw.needs_rehash(subject.password_hash) else None
    )

    with rt.db.unit_of_work() as session:
        # Attempts that raced past the first check while another one failed
        # are refused now, whatever their outcome, so parallel guesses gain nothing.
        wait = throttle.wait_for(session, keys, now)
        if wait:
            raise DomainError("LOGIN_LOCKED", 429, retry_after=wait)
        if not ok or subject is None:
            throttle.record_login_failure(session, settings, acct_key, addr_key, now)
            raise DomainError("INVALID_CREDENTIALS", 401, commit=True)
        refused = _second_factor(session, rt, subject, totp, now)
        if refused is not None:
            throttle.record_login_failure(session, settings, acct_key, addr_key, now)
            status = 403 if refused == "STAFF_MFA_NOT_ENROLLED" else 401
            raise DomainError(refused, status, commit=True)
        throttle.clear(session, acct_key)
        if rehashed:
            row: PersonAccount | StaffUser | None = (
                session.get(PersonAccount, (subject.person_id, subject.id))
                if subject.kind == "person"
                else session.get(StaffUser, subject.id)
            )
            # Unless the password was changed meanwhile.
            if row is not None and row.password_hash == subject.password_hash:
                row.password_hash = rehashed
        ttl = settings.access_token_ttl_seconds
        if subject.kind == "person":
            chan = channel if channel in PERSON_CHANNELS else "app"
            assert subject.person_id is not None
            issued = _issue(
                session, rt, "person", str(subject.id), chan, ttl, person_id=subject.person_id
            )
            sessions.tell_of_new_login(
                session,
                rt,
                person_id=subject.person_id,
                account_id=str(subject.id),
                channel=chan,
                new_token_hash=token_digest(issued.access_token),
            )
            return issued
        assert subject.role is not None
        return _issue(session, rt, "staff", str(subject.id), STAFF_CHANNEL[subject.role], ttl)


def _login_subject(
    session: Session, rt: Runtime, mobile: str | None, ident: str
) -> _LoginSubject | None:
    if mobile:
        login = session.execute(
            select(AccountLogin.person_id, AccountLogin.account_id).where(
                AccountLogin.login_index == rt.vault.index(PHONE_KIND, mobile)
            )
        ).one_or_none()
        if login is None:
            return None
        password_hash = session.execute(
            select(PersonAccount.password_hash).where(
                PersonAccount.person_id == login.person_id, PersonAccount.id == login.account_id
            )
        ).scalar_one_or_none()
        if password_hash is None:
            return None
        return _LoginSubject("person", login.account_id, password_hash, person_id=login.person_id)
    staff = session.execute(
        select(StaffUser.id, StaffUser.password_hash, StaffUser.role, StaffUser.totp_cipher).where(
            StaffUser.username == ident, StaffUser.disabled.is_(False)
        )
    ).one_or_none()
    if staff is None:
        return None
    return _LoginSubject(
        "staff", staff.id, staff.password_hash, staff.role, totp_cipher=staff.totp_cipher
    )


def logout(session: Session, rt: Runtime, principal: Principal) -> None:
    tok = session.get(AccessToken, principal.token_hash)
    if tok is not None and tok.revoked_at is None:
        tok.revoked_at = rt.clock.now()


def client_token(
    rt: Runtime,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None,
    source: str = "unknown",
) -> IssuedToken:
    """Client credentials; like login, the secret is verified outside any transaction,
    and under the same throttle: growing delays per client id (known or not) and a
    pause per address, so each guess's argon2 hash cannot be had at will."""
    now = rt.clock.now()
    keys = [
        throttle.account_key(rt.vault, "client:" + client_id[:64]),
        throttle.address_key(rt.vault, source),
    ]
    with rt.db.read_only() as session:
        wait = throttle.wait_for(session, keys, now)
        client = session.get(ApiClient, client_id) if len(client_id) <= 40 else None
        if client is not None:
            session.expunge(client)
    if wait:
        raise DomainError("TOKEN_THROTTLED", 429, retry_after=wait, extra={"error": "slow_down"})
    # One verification on every path (a dummy hash for an unknown or disabled
    # client): the answer's timing does not tell which client ids exist.
    secret_ok = passwords(rt).verify(client.secret_hash if client else None, client_secret)
    if client is None or client.disabled or not secret_ok:
        with rt.db.unit_of_work() as session:
            throttle.record_login_failure(session, rt.settings, keys[0], keys[1], now)
        raise DomainError("INVALID_CLIENT", 401, extra={"error": "invalid_client"})
    granted = set(client.scopes.split())
    if scope:
        asked = set(scope.split())
        if not asked <= granted:
            raise DomainError("INVALID_SCOPE", 400, extra={"error": "invalid_scope"})
        granted = asked
    with rt.db.unit_of_work() as session:
        return _issue(
            session,
            rt,
            "client",
            client.id,
            client.kind,
            rt.settings.client_token_ttl_seconds,
            " ".join(sorted(granted)),
        )


# --- staff and clients (CLI, channel admin) ---------------------------------


def add_staff(
    session: Session,
    rt: Runtime,
    *,
    username: str,
    role: str,
    region_code: str,
    password: str,
    actor: Actor,
    default_password: bool = False,
) -> StaffUser:
    username = username.strip().lower()
    if not _USERNAME.fullmatch(username):
        raise DomainError("USERNAME_INVALID", 422)
    if role not in STAFF_ROLES:
        raise DomainError("ROLE_INVALID", 422)
    rt.policies.region(region_code)
    if not default_password:
        check_staff_password(password, username)
    # Hashed before the first query: the caller's transaction has not begun yet.
    password_hash = passwords(rt).hash(password)
    if session.execute(select(StaffUser.id).where(StaffUser.username == username)).first():
        raise DomainError("USERNAME_TAKEN", 409)
    now = rt.clock.now()
    staff = StaffUser(
        username=username,
        role=role,
        region_code=region_code,
        password_hash=password_hash,
        default_password=default_password,
        disabled=False,
        created_at=now,
    )
    session.add(staff)
    session.flush()
    record(
        session,
        actor=actor,
        action="staff.add",
        subject_kind="staff",
        subject_id=staff.id,
        at=now,
        details={"role": role, "region_code": region_code},
    )
    return staff


def default_bank_code(client_id: str) -> str:
    """``QQ`` + 14 hex digits of the client id, upper case: unique like the id."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", client_id.removeprefix("qq_"))
    return ("QQ" + digits[:14]).upper()


def add_client(
    session: Session,
    rt: Runtime,
    *,
    name: str,
    kind: str,
    region_code: str,
    bank_code: str | None,
    actor: Actor,
    secret: str | None = None,
    client_id: str | None = None,
) -> tuple[ApiClient, str]:
    """Create an API client; the secret is returned once and stored only hashed."""
    if kind not in CLIENT_KINDS:
        raise DomainError("CLIENT_KIND_INVALID", 422)
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise DomainError("CLIENT_NAME_INVALID", 422)
    client_id = client_id or "qq_" + uuid.uuid4().hex
    if kind == "bank":
        # A bank named without a code is a bank of its own: the client's id gives
        # it a code no other bank has (the bank channel and webhooks key on it).
        bank_code = (bank_code or "").strip().upper() or default_bank_code(client_id)
        if not re.fullmatch(r"[A-Z0-9]{2,16}", bank_code):
            raise DomainError("BANK_CODE_REQUIRED", 422)
    rt.policies.region(region_code)
    now = rt.clock.now()
    secret = secret or secrets.token_urlsafe(32)
    client = ApiClient(
        id=client_id,
        name=name,
        kind=kind,
        region_code=region_code,
        bank_code=bank_code if kind == "bank" else None,
        scopes=CLIENT_SCOPES[kind],
        secret_hash=passwords(rt).hash(secret),
        disabled=False,
        created_at=now,
    )
    session.add(client)
    session.flush()
    record(
        session,
        actor=actor,
        action="client.add",
        subject_kind="api_client",
        subject_id=client.id,
        at=now,
        details={"kind": kind, "region_code": region_code},
    )
    return client, secret


# --- payment password ----------------------------------------------------


def person_account(session: Session, principal: Principal, *, lock: bool = False) -> PersonAccount:
    stmt = select(PersonAccount).where(
        PersonAccount.person_id == principal.person_id,
        PersonAccount.id == uuid.UUID(principal.id),
    )
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    return session.execute(stmt).scalar_one()


def _login_password_checked(
    rt: Runtime, account_row: _AccountRow, password: str, source: str
) -> None:
    """The login password, given again to confirm a change, under the login throttle:
    a locked account or address is refused before the hash, and a wrong password
    counts as a failed login (the review found this call an unthrottled oracle)."""
    now = rt.clock.now()
    phone = rt.vault.decrypt(PHONE_KIND, account_row.phone_cipher)
    keys = [throttle.account_key(rt.vault, phone), throttle.address_key(rt.vault, source)]
    with rt.db.read_only() as reader:
        wait = throttle.wait_for(reader, keys, now)
    if wait:
        raise DomainError("LOGIN_LOCKED", 429, retry_after=wait)
    if not passwords(rt).verify(account_row.password_hash, password):
        with rt.db.unit_of_work() as writer:
            throttle.record_login_failure(writer, rt.settings, keys[0], keys[1], now)
        raise DomainError("INVALID_CREDENTIALS", 401)


@dataclass(frozen=True, slots=True)
class _AccountRow:
    password_hash: str
    payment_password_hash: str | None
    phone_cipher: bytes
    born: date


def _account_row(rt: Runtime, principal: Principal) -> _AccountRow:
    """What a password change checks against, read in a short read-only unit of work
    of its own: the slow hashes that follow must not run inside a transaction."""
    with rt.db.read_only() as reader:
        found = reader.execute(
            select(
                PersonAccount.password_hash,
                PersonAccount.payment_password_hash,
                PersonAccount.phone_cipher,
                Person.birth_date,
            )
            .join(Person, Person.id == PersonAccount.person_id)
            .where(
                PersonAccount.person_id == principal.person_id,
                PersonAccount.id == uuid.UUID(principal.id),
            )
        ).one()
    return _AccountRow(*found)


def change_password(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    password: str,
    new_password: str,
    source: str = "unknown",
) -> int:
    """A new login password, confirmed with the current one (under the login throttle,
    as every login password given anywhere); every other session ends, the caller's
    stays; the person is told. Returns how many sessions ended. The caller's session
    must have no open transaction: the hashes run outside the write."""
    row = _account_row(rt, principal)
    _login_password_checked(rt, row, password, source)
    check_password_strength(new_password)
    if new_password == password:
        raise DomainError("PASSWORD_UNCHANGED", 422)
    new_hash = passwords(rt).hash(new_password)
    now = rt.clock.now()
    account = person_account(session, principal, lock=True)
    if account.password_hash != row.password_hash:
        raise DomainError("INVALID_CREDENTIALS", 401)
    account.password_hash = new_hash
    ended = sessions.end_others(session, rt, principal.id, keep=principal.token_hash)
    record(
        session,
        actor=principal.actor,
        action="password.changed",
        subject_kind="person",
        subject_id=account.person_id,
        at=now,
        details={"sessions_ended": ended},
    )
    assert principal.person_id is not None
    rt.events.publish(
        session,
        AccountNotice(principal.person_id, PASSWORD_CHANGED, now, {"sessions_ended": ended}),
    )
    return ended


def set_payment_password(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    new_payment_password: str,
    password: str | None = None,
    payment_password: str | None = None,
    source: str = "unknown",
) -> None:
    """Set the payment password the first time with the login password, or change it
    with the current payment password. A change goes through the payment password's
    own check, so it counts failures and never clears a lock: a forgotten or locked
    one is reset only after a step-up. The caller's session must have no open
    transaction: the slow hashes run outside the write."""
    if (password is None) == (payment_password is None):
        raise DomainError("PAYMENT_PASSWORD_PROOF_REQUIRED", 422)
    row = _account_row(rt, principal)
    pw = passwords(rt)
    if password is not None:
        if row.payment_password_hash is not None:
            raise DomainError("PAYMENT_PASSWORD_ALREADY_SET", 409)
        _login_password_checked(rt, row, password, source)
    elif row.payment_password_hash is None:
        raise DomainError("PAYMENT_PASSWORD_NOT_SET", 409)
    check_payment_password(new_payment_password, row.born)
    new_hash = pw.hash(new_payment_password)
    now = rt.clock.now()
    account = person_account(session, principal, lock=True)
    if payment_password is not None:
        # Counts a failure (committed) and refuses while locked, as any verification.
        verify_payment_password(session, rt, account, payment_password, now=now)
    elif account.password_hash != row.password_hash or account.payment_password_hash:
        # Changed in between: the login password given is no longer it, or another
        # request set the payment password first.
        raise DomainError("PAYMENT_PASSWORD_ALREADY_SET", 409)
    account.payment_password_hash = new_hash
    record(
        session,
        actor=principal.actor,
        action="payment_password.changed" if payment_password else "payment_password.set",
        subject_kind="person",
        subject_id=account.person_id,
        at=now,
    )


def verify_payment_password(
    session: Session, rt: Runtime, account: PersonAccount, candidate: str, *, now: datetime
) -> None:
    """Check a payment password; the caller holds the account row locked.

    Failures are counted in the database and committed even though the request
    fails (``commit=True``), so neither a retry nor a restart resets them.
    """
    settings = rt.settings
    if account.payment_locked_until and account.payment_locked_until > now:
        raise DomainError(
            "VERIFICATION_LOCKED", 423, locked_until=account.payment_locked_until.isoformat()
        )
    if account.payment_password_hash is None:
        raise DomainError("PAYMENT_PASSWORD_NOT_SET", 409)
    if _PAYMENT_PASSWORD.fullmatch(candidate) and passwords(rt).verify(
        account.payment_password_hash, candidate
    ):
        account.payment_failures = 0
        account.payment_locked_until = None
        return
    account.payment_failures += 1
    if account.payment_failures >= settings.payment_max_failures:
        account.payment_failures = 0
        account.payment_locked_until = now + timedelta(hours=settings.payment_lock_hours)
        record(
            session,
            actor=Actor("system", "qinqing", "system"),
            action="payment_password.locked",
            subject_kind="person",
            subject_id=account.person_id,
            at=now,
        )
        raise DomainError(
            "VERIFICATION_LOCKED",
            423,
            commit=True,
            locked_until=account.payment_locked_until.isoformat(),
        )
    remaining = settings.payment_max_failures - account.payment_failures
    raise DomainError("VERIFICATION_FAILED", 403, commit=True, remaining_attempts=remaining)
