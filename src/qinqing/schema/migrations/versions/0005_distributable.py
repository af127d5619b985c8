"""distributable schema: the owning person first in every key, look-up tables for
global uniqueness, system accounts apart, and the clearing marks

Revision ID: 0005_distributable
Revises: 0004_registration_proof

Every person- and family-scoped table gets the owning person (the holder for
links, unbind requests, payments and their ledger rows) first in its primary
key; the unique keys that could not hold the person (ID-number index, login,
an institution's payment reference) move to look-up tables keyed by that
value; a member's side of each link gets a reverse index on the member; the
institution and funding accounts move to their own table; payments and
contributions carry the time the clearing step posted their other side.
Foreign keys remain only where both ends share the owning person, or point at
a table every node has (docs/scaling.md). SQLite runs this with foreign keys
off (``qinqing.schema.migrate``); each batch below rebuilds its table there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0005_distributable"
down_revision = "0004_registration_proof"
branch_labels = None
depends_on = None

_OPEN = "status IN ('pending_consent', 'active', 'unbinding')"


def _create_lookups() -> None:
    op.create_table(
        "person_id_numbers",
        sa.Column("id_number_index", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id_number_index", name=op.f("pk_person_id_numbers")),
    )
    op.create_table(
        "account_logins",
        sa.Column("login_index", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("login_index", name=op.f("pk_account_logins")),
    )
    op.create_table(
        "payment_references",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("holder_id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "reference", name=op.f("pk_payment_references")),
    )
    op.create_table(
        "payment_keys",
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("holder_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_payment_keys")),
    )
    op.create_table(
        "ledger_system_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("balance_fen", sa.BigInteger(), nullable=False),
        sa.Column("allow_negative", sa.Boolean(), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_code"],
            ["regions.code"],
            name=op.f("fk_ledger_system_accounts_region_code_regions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_system_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_system_accounts_code")),
    )
    op.create_table(
        "family_link_members",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("holder_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["persons.id"], name=op.f("fk_family_link_members_member_id_persons")
        ),
        sa.PrimaryKeyConstraint("member_id", "link_id", name=op.f("pk_family_link_members")),
    )


def _add_columns() -> None:
    with op.batch_alter_table("access_tokens") as b:
        b.add_column(sa.Column("person_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("contributions") as b:
        b.add_column(sa.Column("cleared_at", qinqing.kit.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table("payments") as b:
        b.add_column(sa.Column("cleared_at", qinqing.kit.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table("unbind_requests") as b:
        b.add_column(sa.Column("holder_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("ledger_transfers") as b:
        b.add_column(sa.Column("person_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("ledger_entries") as b:
        b.add_column(sa.Column("person_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("voucher_tokens") as b:
        b.add_column(sa.Column("expires_at", qinqing.kit.db.UTCDateTime(), nullable=True))
        b.create_index("ix_voucher_tokens_expires_at", ["expires_at"])


def _backfill() -> None:
    ex = op.execute
    ex(
        "INSERT INTO person_id_numbers (id_number_index, person_id) SELECT id_number_index, id FROM persons"
    )
    ex(
        "INSERT INTO account_logins (login_index, person_id, account_id) "
        "SELECT login_index, person_id, id FROM person_accounts"
    )
    ex(
        "INSERT INTO family_link_members (member_id, link_id, holder_id) "
        "SELECT member_id, id, holder_id FROM family_links"
    )
    ex(
        "INSERT INTO payment_references (client_id, reference, holder_id, payment_id) "
        "SELECT client_id, reference, holder_id, id FROM payments"
    )
    ex(
        "INSERT INTO payment_keys (payment_id, holder_id, client_id) "
        "SELECT id, holder_id, client_id FROM payments"
    )
    ex(
        "INSERT INTO ledger_system_accounts "
        "(id, code, kind, region_code, balance_fen, allow_negative, created_at) "
        "SELECT id, code, kind, region_code, balance_fen, allow_negative, created_at "
        "FROM ledger_accounts WHERE person_id IS NULL"
    )
    ex(
        "UPDATE voucher_tokens SET expires_at = (SELECT expires_at FROM vouchers "
        "WHERE vouchers.person_id = voucher_tokens.person_id "
        "AND vouchers.id = voucher_tokens.voucher_id)"
    )
    # What was posted before this version already reached the system accounts.
    ex("UPDATE payments SET cleared_at = resolved_at WHERE status = 'settled'")
    ex("UPDATE contributions SET cleared_at = created_at")
    ex(
        "UPDATE unbind_requests SET holder_id = "
        "(SELECT holder_id FROM family_links WHERE family_links.id = unbind_requests.link_id)"
    )
    ex(
        "UPDATE ledger_transfers SET person_id = COALESCE("
        "(SELECT holder_id FROM payments WHERE payments.id = ledger_transfers.payment_id), "
        "(SELECT person_id FROM contributions "
        "WHERE contributions.id = ledger_transfers.contribution_id))"
    )
    ex(
        "UPDATE ledger_entries SET person_id = (SELECT person_id FROM ledger_transfers "
        "WHERE ledger_transfers.id = ledger_entries.transfer_id)"
    )
    # A person's token names its person; its subject is the app account's id as text.
    conn = op.get_bind()
    accounts = sa.table(
        "person_accounts", sa.column("id", sa.Uuid()), sa.column("person_id", sa.Uuid())
    )
    tokens = sa.table(
        "access_tokens",
        sa.column("subject_kind", sa.String()),
        sa.column("subject_id", sa.String()),
        sa.column("person_id", sa.Uuid()),
    )
    pairs = [{"sid": str(r.id), "pid": r.person_id} for r in conn.execute(sa.select(accounts))]
    if pairs:
        conn.execute(
            tokens.update()
            .where(tokens.c.subject_kind == "person", tokens.c.subject_id == sa.bindparam("sid"))
            .values(person_id=sa.bindparam("pid")),
            pairs,
        )


def _drop_cross_shard_keys() -> None:
    """Foreign keys first (they depend on the primary keys about to change)."""
    drops = {
        "family_links": ["fk_family_links_member_id_persons"],
        "unbind_requests": [
            "fk_unbind_requests_link_id_family_links",
            "fk_unbind_requests_initiator_person_id_persons",
        ],
        "payments": [
            "fk_payments_account_id_ledger_accounts",
            "fk_payments_member_id_persons",
            "fk_payments_link_id_family_links",
        ],
        "vouchers": [
            "fk_vouchers_subject_id_persons",
            "fk_vouchers_link_id_family_links",
            "fk_vouchers_payment_id_payments",
        ],
        "ledger_transfers": [
            "fk_ledger_transfers_payment_id_payments",
            "fk_ledger_transfers_debit_account_id_ledger_accounts",
            "fk_ledger_transfers_credit_account_id_ledger_accounts",
            "fk_ledger_transfers_contribution_id_contributions",
        ],
        "ledger_entries": [
            "fk_ledger_entries_transfer_id_ledger_transfers",
            "fk_ledger_entries_account_id_ledger_accounts",
        ],
    }
    for table, names in drops.items():
        with op.batch_alter_table(table) as b:
            for name in names:
                b.drop_constraint(name, type_="foreignkey")


def _rekey() -> None:
    """The owning person first in every primary key; uniques and indexes to match."""
    with op.batch_alter_table("persons") as b:
        b.drop_constraint("uq_persons_id_number_index", type_="unique")
    with op.batch_alter_table("person_accounts") as b:
        b.drop_constraint("uq_person_accounts_login_index", type_="unique")
        b.drop_constraint("pk_person_accounts", type_="primary")
        b.create_primary_key("pk_person_accounts", ["person_id", "id"])
    with op.batch_alter_table("notifications") as b:
        b.drop_index("ix_notifications_person_id")
        b.drop_constraint("pk_notifications", type_="primary")
        b.create_primary_key("pk_notifications", ["person_id", "id"])
    with op.batch_alter_table("contributions") as b:
        b.drop_index("ix_contributions_person_id")
        b.create_index(
            "ix_contributions_uncleared",
            ["region_code"],
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )
        b.drop_constraint("pk_contributions", type_="primary")
        b.create_primary_key("pk_contributions", ["person_id", "id"])
    with op.batch_alter_table("ledger_accounts") as b:
        b.drop_constraint("uq_ledger_accounts_code", type_="unique")
        b.alter_column("person_id", existing_type=sa.Uuid(), nullable=False)
        b.drop_constraint("pk_ledger_accounts", type_="primary")
        b.create_primary_key("pk_ledger_accounts", ["person_id", "id"])
    with op.batch_alter_table("family_links") as b:
        b.drop_index("ix_family_links_holder_id")
        b.drop_index("ix_family_links_member_id")
        b.drop_index("uq_family_links_open_pair")
        b.drop_constraint("pk_family_links", type_="primary")
        b.create_primary_key("pk_family_links", ["holder_id", "id"])
        b.create_index(
            "uq_family_links_open_pair",
            ["holder_id", "pair_key"],
            unique=True,
            sqlite_where=sa.text(_OPEN),
            postgresql_where=sa.text(_OPEN),
        )
    with op.batch_alter_table("unbind_requests") as b:
        b.drop_index("ix_unbind_requests_link_id")
        b.alter_column("holder_id", existing_type=sa.Uuid(), nullable=False)
        b.drop_constraint("pk_unbind_requests", type_="primary")
        b.create_primary_key("pk_unbind_requests", ["holder_id", "id"])
        b.create_index("ix_unbind_requests_link", ["holder_id", "link_id"], unique=False)
    with op.batch_alter_table("payments") as b:
        b.drop_constraint("uq_payments_client_reference", type_="unique")
        b.drop_index("ix_payments_account_status")
        b.drop_index("ix_payments_link_year")
        b.drop_constraint("pk_payments", type_="primary")
        b.create_primary_key("pk_payments", ["holder_id", "id"])
        b.create_index("ix_payments_account_status", ["holder_id", "account_id", "status"])
        b.create_index("ix_payments_link_year", ["holder_id", "link_id", "year"])
        b.create_index(
            "ix_payments_uncleared",
            ["client_id"],
            sqlite_where=sa.text("status = 'settled' AND cleared_at IS NULL"),
            postgresql_where=sa.text("status = 'settled' AND cleared_at IS NULL"),
        )
    with op.batch_alter_table("ledger_transfers") as b:
        b.drop_constraint("uq_ledger_transfers_payment_id", type_="unique")
        b.drop_constraint("uq_ledger_transfers_contribution_id", type_="unique")
        b.alter_column("person_id", existing_type=sa.Uuid(), nullable=False)
        b.drop_constraint("pk_ledger_transfers", type_="primary")
        b.create_primary_key("pk_ledger_transfers", ["person_id", "id"])
        b.create_unique_constraint("uq_ledger_transfers_payment", ["person_id", "payment_id"])
        b.create_unique_constraint(
            "uq_ledger_transfers_contribution", ["person_id", "contribution_id"]
        )
    with op.batch_alter_table("ledger_entries") as b:
        b.drop_index("ix_ledger_entries_transfer_id")
        b.alter_column("person_id", existing_type=sa.Uuid(), nullable=False)
        b.drop_constraint("pk_ledger_entries", type_="primary")
        b.create_primary_key("pk_ledger_entries", ["person_id", "id"])
        b.create_index("ix_ledger_entries_transfer", ["person_id", "transfer_id"])


def _co_located_keys() -> None:
    with op.batch_alter_table("unbind_requests") as b:
        b.create_foreign_key(
            "fk_unbind_requests_holder_id_family_links",
            "family_links",
            ["holder_id", "link_id"],
            ["holder_id", "id"],
        )
    with op.batch_alter_table("payments") as b:
        b.create_foreign_key(
            "fk_payments_holder_id_family_links",
            "family_links",
            ["holder_id", "link_id"],
            ["holder_id", "id"],
        )
        b.create_foreign_key(
            "fk_payments_holder_id_ledger_accounts",
            "ledger_accounts",
            ["holder_id", "account_id"],
            ["person_id", "id"],
        )
    with op.batch_alter_table("vouchers") as b:
        b.create_foreign_key(
            "fk_vouchers_person_id_family_links",
            "family_links",
            ["person_id", "link_id"],
            ["holder_id", "id"],
        )
    with op.batch_alter_table("ledger_transfers") as b:
        b.create_foreign_key(
            "fk_ledger_transfers_person_id_persons", "persons", ["person_id"], ["id"]
        )
        b.create_foreign_key(
            "fk_ledger_transfers_person_id_payments",
            "payments",
            ["person_id", "payment_id"],
            ["holder_id", "id"],
        )
        b.create_foreign_key(
            "fk_ledger_transfers_person_id_contributions",
            "contributions",
            ["person_id", "contribution_id"],
            ["person_id", "id"],
        )
    with op.batch_alter_table("ledger_entries") as b:
        b.create_foreign_key(
            "fk_ledger_entries_person_id_ledger_transfers",
            "ledger_transfers",
            ["person_id", "transfer_id"],
            ["person_id", "id"],
        )


def upgrade() -> None:
    _create_lookups()
    _add_columns()
    _backfill()
    _drop_cross_shard_keys()
    # The system accounts live on in ledger_system_accounts (same ids).
    op.execute("DELETE FROM ledger_accounts WHERE person_id IS NULL")
    _rekey()
    _co_located_keys()


def downgrade() -> None:
    raise NotImplementedError("0005 reshapes every key; restore a backup taken before it instead")
