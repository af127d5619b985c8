from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
    Uuid,
    event,
    insert,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class LinkStatus(StrEnum):
    pending_consent = "pending_consent"  # the member (of consent age) has not accepted yet
    pending_proof = "pending_proof"  # a minor's binder who is no registered guardian must prove it
    active = "active"
    unbinding = "unbinding"  # an unbind request waits for review
    ended = "ended"


OPEN_STATUSES = (
    LinkStatus.pending_consent,
    LinkStatus.pending_proof,
    LinkStatus.active,
    LinkStatus.unbinding,
)
PENDING_STATUSES = (LinkStatus.pending_consent, LinkStatus.pending_proof)
OPEN_SQL = "status IN ('pending_consent', 'pending_proof', 'active', 'unbinding')"


class FamilyLink(Base):
    """亲情关系: a holder (绑定人) and a member (被绑定的家庭成员). Ended links are kept.

    Keyed by the holder first: a holder's links live on the holder's shard.
    Two partial unique indexes are the last line of defence behind the
    service's checks: one open link per holder and member, and at most one
    open spouse, father and mother per holder. The other direction of a pair
    (the member holding the holder) lives on the member's shard; the service
    checks it under both persons' row locks (``family.service``).
    """

    __tablename__ = "family_links"
    __table_args__ = (
        Index(
            "uq_family_links_open_pair",
            "holder_id",
            "pair_key",
            unique=True,
            sqlite_where=text(OPEN_SQL),
            postgresql_where=text(OPEN_SQL),
        ),
        Index(
            "uq_family_links_open_unique_relation",
            "holder_id",
            "relation",
            unique=True,
            sqlite_where=text(OPEN_SQL + " AND relation IN ('spouse', 'father', 'mother')"),
            postgresql_where=text(OPEN_SQL + " AND relation IN ('spouse', 'father', 'mother')"),
        ),
    )

    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # No foreign key: the member lives on another shard. The service loads the
    # member's row under lock before binding (``family.service.bind``).
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # "<lower uuid>:<higher uuid>": the unordered pair, for the open-pair index.
    pair_key: Mapped[str] = mapped_column(String(80))
    relation: Mapped[str] = mapped_column(String(16))
    mutual_aid: Mapped[bool] = mapped_column(Boolean)
    mutual_aid_yearly_limit_fen: Mapped[int | None] = mapped_column(BigInteger)
    # Beyond the holder's policy's mutual-aid scope (跨省共济): mutual aid only through
    # the link's 共济额度 (``quota``), which the holder fills and gets back at the end.
    via_quota: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    status: Mapped[str] = mapped_column(String(20), index=True)
    # The holder's region at binding: whose policy applies and whose staff may see it.
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[str] = mapped_column(String(64))
    created_channel: Mapped[str] = mapped_column(String(16))
    consent_required: Mapped[bool] = mapped_column(Boolean)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by_kind: Mapped[str | None] = mapped_column(String(16))
    ended_by_id: Mapped[str | None] = mapped_column(String(64))
    ended_channel: Mapped[str | None] = mapped_column(String(16))
    end_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FamilyLinkMember(Base):
    """The links seen from the member's side, kept on the member's shard: "my links
    as member" and the reverse-direction pair check read it by the member's id.
    Written once when a link is created; the link itself holds its status."""

    __tablename__ = "family_link_members"

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    link_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    holder_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # When the link was requested: the member's new holders per month count these
    # (None for links made before it was recorded).
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@event.listens_for(FamilyLink, "after_insert")
def _index_member(_mapper: Any, connection: Connection, link: FamilyLink) -> None:
    """Every link gets its member-side row in the same flush."""
    connection.execute(
        insert(FamilyLinkMember).values(
            member_id=link.member_id,
            link_id=link.id,
            holder_id=link.holder_id,
            created_at=link.created_at,
        )
    )


class ProofStatus(StrEnum):
    pending = "pending"  # uploaded, waiting for a reviewer
    approved = "approved"  # the link became active
    rejected = "rejected"  # the link ended


class LinkProof(Base):
    """Proof that a minor's binder is their guardian (出生医学证明, 户口本 or a court's
    guardianship document): uploaded by the holder and decided by a reviewer of the
    member's region, or seen by a clerk there (``channel`` ``counter``: the document's
    number and the paper form's, no file). The file and the document number are kept
    only encrypted (vault kinds ``link_proof`` and ``proof_document_number``). On the
    holder's shard, with the link."""

    __tablename__ = "link_proofs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["holder_id", "link_id"], ["family_links.holder_id", "family_links.id"]
        ),
        Index("ix_link_proofs_link", "holder_id", "link_id"),
        Index("ix_link_proofs_queue", "region_code", "status", "created_at"),
    )

    holder_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    link_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The member's region: its reviewers and clerks decide.
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    document_type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))  # app | counter
    content_type: Mapped[str | None] = mapped_column(String(32))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    content_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    document_number_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    form_number: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_comment: Mapped[str | None] = mapped_column(Text)
