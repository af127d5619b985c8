"""the single-payment functions run on a Citus coordinator; authorizations as a set

Revision ID: 0018_fast_path_on_citus
Revises: 0017_payment_batch

On PostgreSQL this re-installs ``qinqing/payments/fast_path.sql``:

- an authorization finds each person through the ID-number look-up row and then the
  person's row, two statements each found by its table's own distribution key,
  instead of one join of the two tables (which a Citus coordinator cannot run
  without repartitioning);
- a batch of authorizations only is decided as a set (``qinqing_authorize_set``).

Same answers, same signatures.
"""

from __future__ import annotations

from qinqing.schema.migrations.fast_path import install_fast_path

revision = "0018_fast_path_on_citus"
down_revision = "0017_payment_batch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_fast_path()


def downgrade() -> None:
    """Nothing is undone: the functions keep their signatures and answers, and the
    batch function as installed here calls ``qinqing_authorize_set``, so it stays."""
