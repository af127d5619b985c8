"""payment fast path: authorizations by family e-voucher

Revision ID: 0021_vouchers_on_the_fast_path
Revises: 0020_batches_on_citus

On PostgreSQL this re-installs ``qinqing/payments/fast_path.sql``, which adds
``qinqing_payment_authorize_voucher``: the voucher found by its token's look-up
hash, locked, judged as ``vouchers/rules.py`` judges it, then the single
authorization's body (``qinqing_authorize_op``, which now also takes the two
persons by id and whether a voucher names them) and the voucher used up.
``qinqing_authorize_op``'s old signature is dropped and created again with three
trailing arguments that default to what it did before.
"""

from __future__ import annotations

from qinqing.schema.migrations.fast_path import install_fast_path

revision = "0021_vouchers_on_the_fast_path"
down_revision = "0020_batches_on_citus"
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_fast_path()


def downgrade() -> None:
    """Nothing is undone: the old engine path still serves vouchers when the
    function is absent, and the functions installed here decide as it does."""
