from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Uuid,
    event,
    insert,
)
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class PersonAccount(Base):
    """An insured person's app account: login by phone, one per person. Keyed by the
    person first (scale-out rule); the login's uniqueness lives in ``account_logins``."""

    __tablename__ = "person_accounts"

    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("persons.id"), primary_key=True, unique=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    login_index: Mapped[str] = mapped_column(String(64))
    phone_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    password_hash: Mapped[str] = mapped_column(String(255))
    payment_password_hash: Mapped[str | None] = mapped_column(String(255))
    # Counted in the database so a restart does not reset them (docs/guide.md §3).
    payment_failures: Mapped[int] = mapped_column(Integer, default=0)
    payment_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccountLogin(Base):
    """Look-up from a login's blind index (the phone) to its app account: where the
    login's global uniqueness lives (distributed by the index itself on Citus)."""

    __tablename__ = "account_logins"

    login_index: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class StaffUser(Base):
    """经办/审核/管理 staff, bound to one region."""

    __tablename__ = "staff_users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # Set by the demo loader; production refuses to start while any is set.
    default_password: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The TOTP second factor (auth/mfa.py): the secret sealed by the vault, and the
    # last accepted time step, so no code is accepted twice.
    totp_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class ApiClient(Base):
    """An OAuth2 client-credentials client: a partner bank, an institution or a collector."""

    __tablename__ = "api_clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the client_id
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    bank_code: Mapped[str | None] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccessToken(Base):
    """Opaque bearer tokens, stored only as a SHA-256 digest."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))  # person | staff | client
    subject_id: Mapped[str] = mapped_column(String(40), index=True)
    # A person's token names the person too, so the account is found on its shard.
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    channel: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the purge
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A person's session list shows it; written at most every few minutes (auth/sessions.py).
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Throttle counters keyed by an HMAC or an opaque id (never plaintext): failed
    logins per account and per source address, SMS sends per ID number and per
    address (auth.throttle), failed member look-ups per holder (family.lookups)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last counted event: the growing login delay and the SMS resend gap start here.
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RegistrationCode(Base):
    """A person's one live registration code (sent by SMS to the registry phone).

    Only a keyed hash of the code is stored (HMAC with the vault's index key over
    the person, a per-code nonce and the code), so a database dump does not reveal
    it. A new code replaces the old one. Keyed by the person (scale-out rule).
    """

    __tablename__ = "registration_codes"

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OneTimeCode(Base):
    """A purpose-scoped one-time code (``auth.otp``): one live code per person,
    purpose and subject (e.g. the bank link it confirms), sent by SMS to the
    registry phone. Only a keyed hash is stored. No foreign key to ``persons``:
    a request for nobody stores a decoy row under a random id, so that checking
    a code for nobody does the same work and answers the same as a wrong code.
    Keyed by the person first (scale-out rule)."""

    __tablename__ = "one_time_codes"

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@event.listens_for(PersonAccount, "after_insert")
def _index_login(_mapper: Any, connection: Connection, account: PersonAccount) -> None:
    """Every app account gets its login's look-up row in the same flush; a login
    already taken fails here."""
    connection.execute(
        insert(AccountLogin).values(
            login_index=account.login_index, person_id=account.person_id, account_id=account.id
        )
    )


class IdDocumentFailures(Base):
    """Consecutive ID documents at the counter that did not match this person.

    The counter's own verification counter, kept like the payment password's
    (same limits, counted in the database so neither a retry nor a restart
    resets it) but apart from it: a clerk's typing error must not lock the
    person's payment password in the app, and many people who come to the
    counter have no app account at all. Keyed by the person (one row each).
    """

    __tablename__ = "id_document_failures"

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
