"""sessions: when a person's token was last used

Revision ID: 0014_session_seen
Revises: 0013_staff_mfa

``access_tokens.last_seen_at``, for ``GET /me/sessions``: written when a person's
token is used and the last write is older than a few minutes, never per request.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0014_session_seen"
down_revision = "0013_staff_mfa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_tokens") as batch:
        batch.add_column(sa.Column("last_seen_at", qinqing.kit.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_tokens") as batch:
        batch.drop_column("last_seen_at")
