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

from qinqing.schema.migrations.fast_path import install_fast_path

revision = "0007_fast_path_usage"
down_revision = "0006_payment_fast_path"
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_fast_path()


def downgrade() -> None:
    """The functions stay as they are (the previous definition counted overdue holds
    until released; reinstalling it would gain nothing)."""
