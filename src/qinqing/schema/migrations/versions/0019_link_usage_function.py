"""payment fast path: a link's yearly usage in one function

Revision ID: 0019_link_usage_function
Revises: 0018_fast_path_on_citus

On PostgreSQL this re-installs ``qinqing/payments/fast_path.sql``: what a link has
used of its yearly limit (settled payments and open holds, as
``payments/formulas.py`` counts them) is ``qinqing_link_usage``, which the single
authorization and the set-wise batch both call instead of each writing the sum.
Same answers, same signatures.
"""

from __future__ import annotations

from qinqing.schema.migrations.fast_path import install_fast_path

revision = "0019_link_usage_function"
down_revision = "0018_fast_path_on_citus"
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_fast_path()


def downgrade() -> None:
    """Nothing is undone: the functions installed here give the same answers, and
    they call ``qinqing_link_usage``, so it stays."""
