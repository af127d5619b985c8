"""payment batches in one server-side call

Revision ID: 0017_payment_batch
Revises: 0016_registry_changes

On PostgreSQL this re-installs ``qinqing/payments/fast_path.sql``: the bodies of the
single authorization and settle/void functions become ``qinqing_authorize_op`` and
``qinqing_resolve_op`` (the public functions keep their signatures and answers),
and ``qinqing_payment_batch`` runs a whole ``POST /payments/batch`` in one call
(a batch of settles and voids only through ``qinqing_resolve_set``, as a set).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qinqing.schema.migrations.fast_path import install_fast_path

revision = "0017_payment_batch"
down_revision = "0016_registry_changes"
branch_labels = None
depends_on = None

_NEW = (
    "qinqing_payment_batch(text, text, text, timestamptz, int, text[], text[], text[], "
    "text[], bigint[], text[], uuid[], text[], int[], text, int, timestamptz, text, text, "
    "text, text)",
    "qinqing_resolve_set(text, text, timestamptz, text[], text[], uuid[], bigint[])",
)


def upgrade() -> None:
    install_fast_path()


def downgrade() -> None:
    """Drops the batch functions; the revision before re-installs its own single-call
    functions when upgraded to again, and its batches run on the engine. The two
    per-operation functions stay (nothing of the older code calls them)."""
    if op.get_bind().dialect.name == "postgresql":
        for fn in _NEW:
            op.execute(sa.text(f"DROP FUNCTION IF EXISTS {fn}"))
