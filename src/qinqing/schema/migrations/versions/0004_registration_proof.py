"""registration proof: SMS codes, and the time of the last counted throttle event

Revision ID: 0004_registration_proof
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0004_registration_proof"
down_revision = "0004_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registration_codes",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("sent_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("used_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_registration_codes_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_registration_codes")),
    )
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_failure_at", qinqing.kit.db.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.drop_column("last_failure_at")
    op.drop_table("registration_codes")
