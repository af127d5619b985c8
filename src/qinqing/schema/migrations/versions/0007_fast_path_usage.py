"""payment fast path: a link's yearly usage counts settled payments and open holds only

Revision ID: 0007_fast_path_usage
Revises: 0006_payment_fast_path

``payments/formulas.py`` is now the one definition of what uses a yearly limit
(settled payments, and holds not yet expired); the engine, the statements and
the SQL fast path all follow it. An overdue hold that another transaction held
(and so was not released in this one) no longer counts. On PostgreSQL this
re-installs ``qinqing/payments/fast_path.sql`` (``CREATE OR REPLACE``).
"""

from __future__ import annotations

from importlib import resources

from alembic import op

revision = "0007_fast_path_usage"
down_revision = "0006_payment_fast_path"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        sql = resources.files("qinqing.payments").joinpath("fast_path.sql").read_text("utf-8")
        op.get_bind().exec_driver_sql(sql)


def downgrade() -> None:
    """The functions stay as they are (the previous definition counted overdue holds
    until released; reinstalling it would gain nothing)."""
