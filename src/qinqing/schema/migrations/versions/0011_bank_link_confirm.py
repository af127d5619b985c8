"""bank links that both sides confirm; purpose-scoped one-time codes

Revision ID: 0011_bank_link_confirm
Revises: 0010_payment_probes

A bank link now starts ``pending`` and says who must still confirm it
(``awaiting``: ``person`` or ``bank``), with who confirmed it and when. A bank's
request for someone who is not its customer is kept as a pending link of
nobody (a random ``person_id``), so ``bank_links.person_id`` loses its foreign
key to ``persons``; ``claimed_id_cipher`` keeps the ID number the bank named
(encrypted). Links that exist are active already (confirmed by the old rules)
and stay so. New table ``one_time_codes`` (``auth.otp``), distributed by
``person_id`` like ``registration_codes`` (no foreign key either: decoys).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0011_bank_link_confirm"
down_revision = "0010_payment_probes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "one_time_codes",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("sent_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("used_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("person_id", "purpose", "subject", name=op.f("pk_one_time_codes")),
    )
    with op.batch_alter_table("bank_links", schema=None) as batch_op:
        batch_op.drop_constraint("fk_bank_links_person_id_persons", type_="foreignkey")
        batch_op.add_column(sa.Column("awaiting", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("claimed_id_cipher", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("confirmed_at", qinqing.kit.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("confirmed_by_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("confirmed_by_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("confirmed_channel", sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Pending links (and nobody's) cannot be told apart by the older code: they go."""
    op.execute(sa.text("DELETE FROM bank_links WHERE status = 'pending'"))
    op.execute(sa.text("DELETE FROM bank_links WHERE person_id NOT IN (SELECT id FROM persons)"))
    with op.batch_alter_table("bank_links", schema=None) as batch_op:
        batch_op.drop_column("confirmed_channel")
        batch_op.drop_column("confirmed_by_id")
        batch_op.drop_column("confirmed_by_kind")
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("claimed_id_cipher")
        batch_op.drop_column("awaiting")
        batch_op.create_foreign_key(
            "fk_bank_links_person_id_persons", "persons", ["person_id"], ["id"]
        )
    op.drop_table("one_time_codes")
