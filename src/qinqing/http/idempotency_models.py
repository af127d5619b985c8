from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime


class IdempotencyKey(Base):
    """The first answer to a write, kept so a retry with the same key replays it
    (Stripe-style): same key and body → same answer; another body → 409."""

    __tablename__ = "idempotency_keys"

    # Keys are per caller: "person:<id>", "staff:<id>", "client:<id>".
    caller: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    operation: Mapped[str] = mapped_column(String(160))  # method and route template + path ids
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
