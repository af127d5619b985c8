"""resident contributions: a holder pays a member's 居民医保 (共济缴费)

Revision ID: 0012_resident_contributions
Revises: 0011_bank_link_confirm

- ``resident_contributions``: one cover year of a member's resident insurance,
  paid from the holder's personal account; kept with the holder (the link and
  the ledger transfer it names are there too).
- ``resident_cover_years``: the member's paid cover years, the global "once per
  member and year" whoever pays; kept with the member.

The regions' resident-fund accounts (``ledger_system_accounts`` kind
``resident_fund``) need no schema change: they are created on first use.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0012_resident_contributions"
down_revision = "0011_bank_link_confirm"
branch_labels = None
depends_on = None

_UNCLEARED = "cleared_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "resident_contributions",
        sa.Column("holder_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("cover_starts_on", sa.Date(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("verification_method", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("cleared_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["persons.id"], name=op.f("fk_resident_contributions_holder_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["holder_id", "link_id"],
            ["family_links.holder_id", "family_links.id"],
            name=op.f("fk_resident_contributions_holder_id_family_links"),
        ),
        sa.ForeignKeyConstraint(
            ["holder_id", "transfer_id"],
            ["ledger_transfers.person_id", "ledger_transfers.id"],
            name=op.f("fk_resident_contributions_holder_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["region_code"],
            ["regions.code"],
            name=op.f("fk_resident_contributions_region_code_regions"),
        ),
        sa.PrimaryKeyConstraint("holder_id", "id", name=op.f("pk_resident_contributions")),
        sa.UniqueConstraint(
            "holder_id", "member_id", "year", name="uq_resident_contributions_year"
        ),
    )
    op.create_index(
        "ix_resident_contributions_region_year",
        "resident_contributions",
        ["region_code", "year", "created_at"],
    )
    op.create_index(
        "ix_resident_contributions_member", "resident_contributions", ["member_id", "year"]
    )
    op.create_index(
        "ix_resident_contributions_uncleared",
        "resident_contributions",
        ["region_code"],
        sqlite_where=sa.text(_UNCLEARED),
        postgresql_where=sa.text(_UNCLEARED),
    )
    op.create_table(
        "resident_cover_years",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Uuid(), nullable=False),
        sa.Column("contribution_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["persons.id"], name=op.f("fk_resident_cover_years_member_id_persons")
        ),
        sa.PrimaryKeyConstraint("member_id", "year", name=op.f("pk_resident_cover_years")),
    )


def downgrade() -> None:
    op.drop_table("resident_cover_years")
    op.drop_index("ix_resident_contributions_uncleared", table_name="resident_contributions")
    op.drop_index("ix_resident_contributions_member", table_name="resident_contributions")
    op.drop_index("ix_resident_contributions_region_year", table_name="resident_contributions")
    op.drop_table("resident_contributions")
