"""cross-region mutual aid through a quota (共济额度)

Revision ID: 0015_quota
Revises: 0014_session_seen

A family link beyond the holder's policy's mutual-aid scope is marked
``family_links.via_quota``: it pays only from its quota, an account of its own in
``ledger_accounts`` (kind ``quota``, ``link_id`` naming the link, on the holder's
shard). So a person now has one personal account and any number of quotas: the
unique key on ``person_id`` becomes two partial unique indexes (one personal
account per person, one quota per link). On PostgreSQL this re-installs
``qinqing/payments/fast_path.sql``: overdue holds are released per account, and a
payment holds on the account its link pays from.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qinqing.schema.migrations.fast_path import install_fast_path

revision = "0015_quota"
down_revision = "0014_session_seen"
branch_labels = None
depends_on = None

_PERSONAL = "kind = 'personal'"
_QUOTA = "kind = 'quota'"
_OLD_LOCK = "qinqing_lock_payments(uuid, uuid, timestamptz, boolean)"


def upgrade() -> None:
    with op.batch_alter_table("family_links") as batch:
        batch.add_column(
            sa.Column("via_quota", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("ledger_accounts") as batch:
        batch.add_column(sa.Column("link_id", sa.Uuid(), nullable=True))
        batch.drop_constraint("uq_ledger_accounts_person_id", type_="unique")
        batch.create_index(
            "uq_ledger_accounts_personal",
            ["person_id"],
            unique=True,
            sqlite_where=sa.text(_PERSONAL),
            postgresql_where=sa.text(_PERSONAL),
        )
        batch.create_index(
            "uq_ledger_accounts_quota",
            ["person_id", "link_id"],
            unique=True,
            sqlite_where=sa.text(_QUOTA),
            postgresql_where=sa.text(_QUOTA),
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(f"DROP FUNCTION IF EXISTS {_OLD_LOCK}"))
    install_fast_path()


def downgrade() -> None:
    """Only without quotas: the old unique key on ``person_id`` cannot hold two
    accounts of one person. The fast path functions stay (the old code finds the
    lock function's new signature unknown and keeps the engine)."""
    op.execute(sa.text("DELETE FROM ledger_accounts WHERE kind = 'quota'"))
    with op.batch_alter_table("ledger_accounts") as batch:
        batch.drop_index("uq_ledger_accounts_quota")
        batch.drop_index("uq_ledger_accounts_personal")
        batch.create_unique_constraint("uq_ledger_accounts_person_id", ["person_id"])
        batch.drop_column("link_id")
    with op.batch_alter_table("family_links") as batch:
        batch.drop_column("via_quota")
