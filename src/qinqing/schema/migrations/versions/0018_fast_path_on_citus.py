"""the single-payment functions run on a Citus coordinator

Revision ID: 0018_fast_path_on_citus
Revises: 0017_payment_batch

On PostgreSQL this re-installs ``qinqing/payments/fast_path.sql``: an authorization
finds each person through the ID-number look-up row and then the person's row, two
statements each found by its table's own distribution key, instead of one join of the
two tables (which a Citus coordinator cannot run without repartitioning). Same
answers, same signatures; nothing to undo on downgrade.
"""

from __future__ import annotations

from importlib import resources

from alembic import op

revision = "0018_fast_path_on_citus"
down_revision = "0017_payment_batch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        sql = resources.files("qinqing.payments").joinpath("fast_path.sql").read_text("utf-8")
        op.get_bind().exec_driver_sql(sql)


def downgrade() -> None:
    """The functions keep their signatures: the older body would answer the same."""
