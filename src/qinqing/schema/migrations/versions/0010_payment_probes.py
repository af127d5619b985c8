"""payment fast path: institution probes (one answer for a refusal about the persons,
counted per institution and hour)

Revision ID: 0010_payment_probes
Revises: 0008_family_trust

An authorization by two bare ID numbers refused for a reason about the persons
is told ``MUTUAL_AID_UNAVAILABLE`` unless the institution was shown the
member's family e-voucher, and counted against the institution's hour in the
key-based throttle table ``login_throttle`` (key ``probe:<client id>``; no new
table). On PostgreSQL this re-installs ``qinqing/payments/fast_path.sql``:
``qinqing_payment_authorize`` takes three more parameters and returns the real
reason and the counter for the caller's audit entry, so the file drops the
function of the old signature before creating the new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qinqing.schema.migrations.fast_path import install_fast_path

revision = "0010_payment_probes"
down_revision = "0008_family_trust"
branch_labels = None
depends_on = None

_NEW_AUTHORIZE = (
    "qinqing_payment_authorize(text, text, text, timestamptz, int, text, text, bigint, "
    "text, uuid, text[], int[], text, int, timestamptz, text, text, text, text)"
)


def upgrade() -> None:
    install_fast_path()


def downgrade() -> None:
    """Drops the new authorization function. The code of the revision before does
    not know its signature: without a function of the name it finds the fast path
    not installed and keeps the engine (``payments.fast``), until an upgrade
    installs the functions again."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(f"DROP FUNCTION IF EXISTS {_NEW_AUTHORIZE}"))
