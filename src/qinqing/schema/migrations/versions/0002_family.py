"""family links, unbind requests, outbox, idempotency

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 06:43:38.479249
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=160), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "family_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("holder_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("pair_key", sa.String(length=80), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("mutual_aid", sa.Boolean(), nullable=False),
        sa.Column("mutual_aid_yearly_limit_fen", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("created_by_kind", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.String(length=64), nullable=False),
        sa.Column("created_channel", sa.String(length=16), nullable=False),
        sa.Column("consent_required", sa.Boolean(), nullable=False),
        sa.Column("activated_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("ended_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("ended_by_kind", sa.String(length=16), nullable=True),
        sa.Column("ended_by_id", sa.String(length=64), nullable=True),
        sa.Column("ended_channel", sa.String(length=16), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["persons.id"], name=op.f("fk_family_links_holder_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["persons.id"], name=op.f("fk_family_links_member_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_family_links_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_links")),
    )
    with op.batch_alter_table("family_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_family_links_holder_id"), ["holder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_family_links_member_id"), ["member_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_family_links_region_code"), ["region_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_family_links_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_family_links_open_pair",
            ["pair_key"],
            unique=True,
            sqlite_where=sa.text("status IN ('pending_consent', 'active', 'unbinding')"),
            postgresql_where=sa.text("status IN ('pending_consent', 'active', 'unbinding')"),
        )
        batch_op.create_index(
            "uq_family_links_open_unique_relation",
            ["holder_id", "relation"],
            unique=True,
            sqlite_where=sa.text(
                "status IN ('pending_consent', 'active', 'unbinding') AND relation IN ('spouse', 'father', 'mother')"
            ),
            postgresql_where=sa.text(
                "status IN ('pending_consent', 'active', 'unbinding') AND relation IN ('spouse', 'father', 'mother')"
            ),
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_notifications_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notifications_delivered_at"), ["delivered_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_notifications_person_id"), ["person_id"], unique=False)

    op.create_table(
        "unbind_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("on_behalf_of", sa.String(length=8), nullable=False),
        sa.Column("initiator_person_id", sa.Uuid(), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("verification_method", sa.String(length=20), nullable=False),
        sa.Column("form_number", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("decided_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["initiator_person_id"],
            ["persons.id"],
            name=op.f("fk_unbind_requests_initiator_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["family_links.id"], name=op.f("fk_unbind_requests_link_id_family_links")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_unbind_requests_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unbind_requests")),
    )
    with op.batch_alter_table("unbind_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unbind_requests_link_id"), ["link_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_unbind_requests_region_code"), ["region_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_unbind_requests_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unbind_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unbind_requests_status"))
        batch_op.drop_index(batch_op.f("ix_unbind_requests_region_code"))
        batch_op.drop_index(batch_op.f("ix_unbind_requests_link_id"))

    op.drop_table("unbind_requests")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_person_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_delivered_at"))
        batch_op.drop_index(batch_op.f("ix_notifications_created_at"))

    op.drop_table("notifications")
    with op.batch_alter_table("family_links", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_family_links_open_unique_relation",
            sqlite_where=sa.text(
                "status IN ('pending_consent', 'active', 'unbinding') AND relation IN ('spouse', 'father', 'mother')"
            ),
            postgresql_where=sa.text(
                "status IN ('pending_consent', 'active', 'unbinding') AND relation IN ('spouse', 'father', 'mother')"
            ),
        )
        batch_op.drop_index(
            "uq_family_links_open_pair",
            sqlite_where=sa.text("status IN ('pending_consent', 'active', 'unbinding')"),
            postgresql_where=sa.text("status IN ('pending_consent', 'active', 'unbinding')"),
        )
        batch_op.drop_index(batch_op.f("ix_family_links_status"))
        batch_op.drop_index(batch_op.f("ix_family_links_region_code"))
        batch_op.drop_index(batch_op.f("ix_family_links_member_id"))
        batch_op.drop_index(batch_op.f("ix_family_links_holder_id"))

    op.drop_table("family_links")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))

    op.drop_table("idempotency_keys")
