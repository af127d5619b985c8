"""registry changes: a member who left the resident scheme, on what was paid for them

Revision ID: 0016_registry_changes
Revises: 0015_quota

``resident_contributions.member_left_scheme_at``: set when a re-import of the
registry says the member left the resident scheme (another scheme, ``terminated``
or ``deceased``) while a paid cover year was not over, so the collector's list
shows it (``resident.registry``). Persons may now be ``deceased``: ``persons.status``
is a plain string column, so that needs no change here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0016_registry_changes"
down_revision = "0015_quota"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resident_contributions") as batch:
        batch.add_column(
            sa.Column("member_left_scheme_at", qinqing.kit.db.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("resident_contributions") as batch:
        batch.drop_column("member_left_scheme_at")
