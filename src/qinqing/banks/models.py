"""Tables of the bank channel: bank associations, webhook endpoints, the webhook outbox.

Scale-out: ``bank_links`` and ``bank_webhook_events`` are person-scoped (the
owning person first in the primary key); the global uniqueness of an account
number lives in the small look-up table ``bank_account_index`` keyed by the
account's blind index; ``bank_webhook_endpoints`` is a reference table like
``api_clients``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class BankLinkStatus(StrEnum):
    pending = "pending"
    active = "active"
    ended = "ended"


class Awaiting(StrEnum):
    """Who must still confirm a pending link: the person (a bank started it) or the
    bank (the person started it in the app)."""

    person = "person"
    bank = "bank"


class BankLink(Base):
    """医保关联银行账户: a person's bank account linked to their insurance account.

    The account number is kept only as a blind index and AES-GCM ciphertext
    (vault kind ``bank_account``); ended links are kept with who ended them.

    Both sides confirm: a link starts ``pending`` and ``awaiting`` says who must
    still confirm it. A bank's request for someone who is not its customer (no
    such person, another name, another region) is kept as a pending link of
    nobody: ``person_id`` is then a random id of no person (hence no foreign key
    to ``persons``), so the bank's list, confirm and unlink treat it exactly as
    a real pending link, and it can never be confirmed. ``claimed_id_cipher``
    is the ID number the bank named (vault kind ``id_number``), for its list.
    """

    __tablename__ = "bank_links"
    __table_args__ = (
        Index("ix_bank_links_person_bank", "person_id", "bank_code", "status"),
        Index("ix_bank_links_bank_created", "bank_code", "created_at"),
        Index("ix_bank_links_id", "id"),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bank_code: Mapped[str] = mapped_column(String(16))
    account_index: Mapped[str] = mapped_column(String(64))
    account_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[str] = mapped_column(String(64))
    created_channel: Mapped[str] = mapped_column(String(16))
    awaiting: Mapped[str | None] = mapped_column(String(16))
    claimed_id_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_kind: Mapped[str | None] = mapped_column(String(16))
    confirmed_by_id: Mapped[str | None] = mapped_column(String(64))
    confirmed_channel: Mapped[str | None] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by_kind: Mapped[str | None] = mapped_column(String(16))
    ended_by_id: Mapped[str | None] = mapped_column(String(64))
    ended_channel: Mapped[str | None] = mapped_column(String(16))


class BankAccountIndex(Base):
    """One row per actively linked account number: global uniqueness across persons."""

    __tablename__ = "bank_account_index"

    account_index: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    bank_link_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookEndpoint(Base):
    """Where a bank client's events go; the signing secret is vault-encrypted."""

    __tablename__ = "bank_webhook_endpoints"

    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class WebhookEvent(Base):
    """The webhook outbox: one row per event and endpoint, written in the same
    transaction as the change. ``id`` is the ``webhook-id`` header, the same on
    every attempt; ``body`` is the exact JSON signed and sent each time."""

    __tablename__ = "bank_webhook_events"
    __table_args__ = (
        Index("ix_bank_webhook_events_due", "status", "next_attempt_at"),
        Index("ix_bank_webhook_events_id", "id"),
    )

    # The person the event is about (the holder for family events): the shard key.
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
