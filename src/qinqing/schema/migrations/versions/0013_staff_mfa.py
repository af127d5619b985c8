"""staff second factor: a sealed TOTP secret and the last accepted step

Revision ID: 0013_staff_mfa
Revises: 0012_resident_contributions

``staff_users`` gains ``totp_cipher`` (the RFC 6238 secret, sealed by the vault)
and ``totp_last_step`` (the last accepted 30-second step: a code is accepted once).
Both are empty until an operator runs ``qinqing staff mfa USERNAME``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_staff_mfa"
down_revision = "0012_resident_contributions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("totp_cipher", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_cipher")
