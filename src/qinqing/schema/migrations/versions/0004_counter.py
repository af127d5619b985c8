"""counter: ID-document verification failures at the counter

Revision ID: 0004_counter
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0004_counter"
down_revision = "0004_banks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "id_document_failures",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("updated_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_id_document_failures_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_id_document_failures")),
    )


def downgrade() -> None:
    op.drop_table("id_document_failures")
