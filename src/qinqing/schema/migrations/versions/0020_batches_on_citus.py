"""payment fast path: batches on a Citus coordinator too

Revision ID: 0020_batches_on_citus
Revises: 0019_link_usage_function

On PostgreSQL this re-installs ``qinqing/payments/fast_path.sql``. A batch
(``qinqing_payment_batch`` and the set-wise ``qinqing_authorize_set`` and
``qinqing_resolve_set``) now reads each table in a statement of its own, by that
table's distribution key, and locks one group of holders at a time
(``qinqing_lock_groups``: all of them on one database, one person at a time on
Citus, in person order), so a Citus coordinator runs batches through the same functions
instead of the ORM engine. Same answers, same signatures.
"""

from __future__ import annotations

from qinqing.schema.migrations.fast_path import install_fast_path

revision = "0020_batches_on_citus"
down_revision = "0019_link_usage_function"
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_fast_path()


def downgrade() -> None:
    """Nothing is undone: the functions installed here give the same answers as
    the ones they replace, and ``qinqing_lock_groups`` is theirs."""
