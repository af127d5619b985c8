"""Family e-vouchers (医保电子凭证): one row per token shown, kept as the record
of who showed it, which institution redeemed it and which payment used it.

The token itself is never stored: only a keyed hash of its random part, in a
small look-up table keyed by that hash (global uniqueness lives there, as the
scale-out rule asks). The voucher row is keyed by the person who showed it —
the holder, for a family member's voucher — so every lock on it filters on the
owning person by equality.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class Voucher(Base):
    __tablename__ = "vouchers"
    __table_args__ = (
        Index("ix_vouchers_person_created", "person_id", "created_at"),
        # A family voucher is shown by the link's holder: the link is on this shard.
        ForeignKeyConstraint(
            ["person_id", "link_id"], ["family_links.holder_id", "family_links.id"]
        ),
    )

    # Who showed it: the person themselves, or the holder of ``link_id``.
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Whom it names: the same person, or the link's member.
    # No foreign key: the member lives on another shard (the link names them).
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    link_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The region whose policy set the lifetime.
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The first institution to redeem (or pay with) it; no other may use it.
    claimed_by: Mapped[str | None] = mapped_column(ForeignKey("api_clients.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The payment it paid for (a look-up by id: ``payment_keys`` finds its shard).
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class VoucherToken(Base):
    """Look-up from a token to its voucher: ``token_hash`` is a keyed hash of the
    token's random part, so a database dump cannot be turned back into a token."""

    __tablename__ = "voucher_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    voucher_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The voucher's expiry, copied so the purge needs no join to the voucher's shard.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
