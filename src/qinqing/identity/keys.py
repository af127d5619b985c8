"""The master key's check value: a database refuses every key but its own.

A database remembers which master key its personal data was sealed with: at
first start a key-check value (an HMAC of a constant under a sub-key of the
master key, see ``Vault.key_check``) is stored in ``vault_keys`` with a key
version. Every later start compares it, and refuses to run with another key:
a wrong key would make every ciphertext unreadable and every blind index miss
(an import would then create duplicate persons). Moving to a new key is
``ops.keys`` (``qinqing keys rotate``): while one is unfinished (a key in state
``next``), nothing else starts.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from qinqing.identity.vault import Vault
from qinqing.kit.db import Base, UTCDateTime, insert_ignore

log = logging.getLogger("qinqing.keys")

CURRENT, NEXT, RETIRED = "current", "next", "retired"


class VaultKey(Base):
    """One master key this database has known: its check value and state."""

    __tablename__ = "vault_keys"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key_check: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # current | next | retired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A rotation's resumable cursor (the audit chain's position).
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class KeyCheckError(Exception):
    """The configured key is not this database's key (the text names the problem,
    never a key)."""


WRONG_KEY = (
    "QINQING_SECRET_KEY is not the key this database's personal data was encrypted "
    "with (key check failed). Set the right key; with another one ID numbers and "
    "phones cannot be read and imports would create duplicate persons."
)
ROTATING = (
    "a key rotation is unfinished: finish it with `qinqing keys rotate` "
    "(QINQING_SECRET_KEY = the old key, QINQING_NEW_SECRET_KEY = the new one) before starting"
)


def known_keys(session: Session) -> list[VaultKey]:
    return list(session.execute(select(VaultKey).order_by(VaultKey.version)).scalars())


def problem(session: Session, vault: Vault, *, rotating_ok: bool = False) -> str | None:
    """Why this vault may not serve this database (None: it may). Read-only."""
    return problem_among(known_keys(session), vault, rotating_ok=rotating_ok)


def problem_among(rows: list[VaultKey], vault: Vault, *, rotating_ok: bool = False) -> str | None:
    """:func:`problem`, from the database's key rows already read."""
    mine = vault.key_check()
    current = next((r for r in rows if r.state == CURRENT), None)
    pending = next((r for r in rows if r.state == NEXT), None)
    if current is None:
        return "the database has no key check yet"
    if current.key_check != mine:
        if pending is not None and pending.key_check == mine:
            return "QINQING_SECRET_KEY is the new key of an unfinished rotation; " + ROTATING
        if any(r.state == RETIRED and r.key_check == mine for r in rows):
            return "QINQING_SECRET_KEY is a retired key: this database was rotated to a newer one"
        return WRONG_KEY
    if pending is not None and not rotating_ok:
        return ROTATING
    return None


def ensure(session: Session, vault: Vault, now: datetime, *, rotating_ok: bool = False) -> None:
    """At every start: record the key check on first start, then compare it.

    Sets ``vault.version`` to the database's version of this key. Raises
    :class:`KeyCheckError` on a mismatch. (The first start of a database made
    before keys were checked also keys its older records: ``ops.legacy``.)
    """
    if session.info.get("vault") is None:
        session.info["vault"] = vault

    insert_ignore(
        session,
        VaultKey,
        {
            "version": 1,
            "key_check": vault.key_check(),
            "state": CURRENT,
            "created_at": now,
            "progress": {},
        },
    )
    rows = known_keys(session)
    found = problem_among(rows, vault, rotating_ok=rotating_ok)
    if found:
        raise KeyCheckError(found)
    vault.version = next(r.version for r in rows if r.state == CURRENT)
