"""bank links, the account-number look-up, webhook endpoints and the webhook outbox

Revision ID: 0004_banks
Revises: 0003
Create Date: 2026-12-01 08:39:22.830188
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0004_banks"
down_revision = "0004_vouchers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_account_index",
        sa.Column("account_index", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("bank_link_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_index", name=op.f("pk_bank_account_index")),
    )
    op.create_table(
        "bank_links",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("account_index", sa.String(length=64), nullable=False),
        sa.Column("account_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("created_by_kind", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.String(length=64), nullable=False),
        sa.Column("created_channel", sa.String(length=16), nullable=False),
        sa.Column("ended_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("ended_by_kind", sa.String(length=16), nullable=True),
        sa.Column("ended_by_id", sa.String(length=64), nullable=True),
        sa.Column("ended_channel", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_bank_links_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("person_id", "id", name=op.f("pk_bank_links")),
    )
    with op.batch_alter_table("bank_links", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bank_links_bank_created", ["bank_code", "created_at"], unique=False
        )
        batch_op.create_index("ix_bank_links_id", ["id"], unique=False)
        batch_op.create_index(
            "ix_bank_links_person_bank", ["person_id", "bank_code", "status"], unique=False
        )

    op.create_table(
        "bank_webhook_endpoints",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_bank_webhook_endpoints_client_id_api_clients"),
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_bank_webhook_endpoints")),
    )
    op.create_table(
        "bank_webhook_events",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("last_attempt_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_bank_webhook_events_client_id_api_clients"),
        ),
        sa.PrimaryKeyConstraint("person_id", "id", name=op.f("pk_bank_webhook_events")),
    )
    with op.batch_alter_table("bank_webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bank_webhook_events_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index("ix_bank_webhook_events_id", ["id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bank_webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_webhook_events_id")
        batch_op.drop_index("ix_bank_webhook_events_due")

    op.drop_table("bank_webhook_events")
    op.drop_table("bank_webhook_endpoints")
    with op.batch_alter_table("bank_links", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_links_person_bank")
        batch_op.drop_index("ix_bank_links_id")
        batch_op.drop_index("ix_bank_links_bank_created")

    op.drop_table("bank_links")
    op.drop_table("bank_account_index")
