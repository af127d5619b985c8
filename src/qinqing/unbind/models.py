from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class RequestStatus(StrEnum):
    completed = "completed"  # ended at once (no review in this region)
    pending_review = "pending_review"
    approved = "approved"  # review approved: the link ended
    rejected = "rejected"  # review rejected: the link is active again
    # The link ended otherwise before a review (the registry: a party died), so
    # there was nothing left to decide; decided_by "registry".
    closed = "closed"


class UnbindRequest(Base):
    """One unbind (解除绑定) request and, where the policy asks, its review."""

    __tablename__ = "unbind_requests"

    __table_args__ = (
        ForeignKeyConstraint(
            ["holder_id", "link_id"], ["family_links.holder_id", "family_links.id"]
        ),
        Index("ix_unbind_requests_link", "holder_id", "link_id"),
    )

    # The link's holder: the request lives on the link's shard.
    holder_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    link_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # The party the request is for (holder or member) and who actually submitted it.
    on_behalf_of: Mapped[str] = mapped_column(String(8))  # holder | member
    # No foreign key: the member who asked lives on another shard.
    initiator_person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    verification_method: Mapped[str] = mapped_column(String(20))
    form_number: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_comment: Mapped[str | None] = mapped_column(Text)
