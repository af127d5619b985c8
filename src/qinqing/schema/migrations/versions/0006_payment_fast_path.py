"""payment fast path: one server-side function per payment operation (PostgreSQL),
and leaner payment indexes

Revision ID: 0006_payment_fast_path
Revises: 0005_distributable

On PostgreSQL this installs the functions of ``qinqing/payments/fast_path.sql``
(``CREATE OR REPLACE``, so running it again is harmless); SQLite has no stored
functions and keeps the ORM path. On both databases two payment indexes give
way to one smaller one:

- ``ix_payments_account_status`` (holder, account, status) served only a
  holder's own open holds, which the primary key's holder prefix already
  finds; every authorization and settlement paid for it.
- ``ix_payments_status_expires`` (status, expires_at) indexed every payment
  ever made; the expiry job only looks for open holds, so the partial
  ``ix_payments_open_expiry`` (expires_at) WHERE status = 'authorized' holds
  just those, and a settled or voided payment leaves it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qinqing.schema.migrations.fast_path import install_fast_path

revision = "0006_payment_fast_path"
down_revision = "0005_distributable"
branch_labels = None
depends_on = None

_OPEN = sa.text("status = 'authorized'")


def upgrade() -> None:
    op.drop_index("ix_payments_account_status", table_name="payments")
    op.drop_index("ix_payments_status_expires", table_name="payments")
    op.create_index(
        "ix_payments_open_expiry",
        "payments",
        ["expires_at"],
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )
    install_fast_path()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for fn in (
            "qinqing_payment_resolve(text, text, text, timestamptz, uuid, bigint, text, text, "
            "text, text)",
            "qinqing_payment_authorize(text, text, text, timestamptz, int, text, text, bigint, "
            "text, uuid, text[], int[], text, text, text, text)",
            "qinqing_lock_payments(uuid, uuid, timestamptz, boolean)",
            "qinqing_payment_admit(text, timestamptz, text, text, text, text)",
            "qinqing_idempotency_reserve(text, text, text, text, timestamptz)",
        ):
            op.execute(sa.text(f"DROP FUNCTION IF EXISTS {fn}"))
    op.drop_index("ix_payments_open_expiry", table_name="payments")
    op.create_index("ix_payments_status_expires", "payments", ["status", "expires_at"])
    op.create_index("ix_payments_account_status", "payments", ["holder_id", "account_id", "status"])
