"""vouchers: family e-vouchers and the look-up from a token hash

Revision ID: 0004_vouchers
Revises: 0003
Create Date: 2026-12-01 08:38:15.584140
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0004_vouchers"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voucher_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("voucher_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_voucher_tokens")),
    )
    op.create_table(
        "vouchers",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=40), nullable=True),
        sa.Column("claimed_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("used_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["claimed_by"], ["api_clients.id"], name=op.f("fk_vouchers_claimed_by_api_clients")
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["family_links.id"], name=op.f("fk_vouchers_link_id_family_links")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_vouchers_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_vouchers_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_vouchers_region_code_regions")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["persons.id"], name=op.f("fk_vouchers_subject_id_persons")
        ),
        sa.PrimaryKeyConstraint("person_id", "id", name=op.f("pk_vouchers")),
    )
    with op.batch_alter_table("vouchers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vouchers_person_created", ["person_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("vouchers", schema=None) as batch_op:
        batch_op.drop_index("ix_vouchers_person_created")

    op.drop_table("vouchers")
    op.drop_table("voucher_tokens")
