"""family trust: a minor's registered guardians, links that wait for proof, the proofs

Revision ID: 0008_family_trust
Revises: 0007_fast_path_usage

- ``person_guardians``: a minor's registered guardians (blind index of each
  guardian's ID number), from the registry import's ``guardians`` column.
- ``link_proofs``: guardianship proofs, uploaded (the file encrypted) or seen at
  the counter (the document's number encrypted), and their decision.
- ``family_links`` gains the status ``pending_proof``: an open status, so the two
  partial unique indexes are rebuilt to count it.
- ``family_link_members.created_at``: when the link was requested, for the
  member's new holders per month (``member_binds_per_month``); links made before
  this migration have none and do not count.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import qinqing.kit.db

revision = "0008_family_trust"
down_revision = "0007_fast_path_usage"
branch_labels = None
depends_on = None

_OLD_OPEN = "status IN ('pending_consent', 'active', 'unbinding')"
_NEW_OPEN = "status IN ('pending_consent', 'pending_proof', 'active', 'unbinding')"
_SINGLE = " AND relation IN ('spouse', 'father', 'mother')"


def _open_indexes(open_sql: str) -> None:
    op.drop_index("uq_family_links_open_pair", table_name="family_links")
    op.drop_index("uq_family_links_open_unique_relation", table_name="family_links")
    op.create_index(
        "uq_family_links_open_pair",
        "family_links",
        ["holder_id", "pair_key"],
        unique=True,
        sqlite_where=sa.text(open_sql),
        postgresql_where=sa.text(open_sql),
    )
    op.create_index(
        "uq_family_links_open_unique_relation",
        "family_links",
        ["holder_id", "relation"],
        unique=True,
        sqlite_where=sa.text(open_sql + _SINGLE),
        postgresql_where=sa.text(open_sql + _SINGLE),
    )


def upgrade() -> None:
    op.create_table(
        "person_guardians",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("guardian_index", sa.String(length=64), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_person_guardians_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("person_id", "guardian_index", name=op.f("pk_person_guardians")),
    )
    op.create_table(
        "link_proofs",
        sa.Column("holder_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("document_type", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("content_cipher", sa.LargeBinary(), nullable=True),
        sa.Column("document_number_cipher", sa.LargeBinary(), nullable=True),
        sa.Column("form_number", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=False),
        sa.Column("created_by_kind", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.String(length=64), nullable=False),
        sa.Column("decided_at", qinqing.kit.db.UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id", "link_id"],
            ["family_links.holder_id", "family_links.id"],
            name=op.f("fk_link_proofs_holder_id_family_links"),
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_link_proofs_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("holder_id", "id", name=op.f("pk_link_proofs")),
    )
    op.create_index("ix_link_proofs_link", "link_proofs", ["holder_id", "link_id"])
    op.create_index("ix_link_proofs_queue", "link_proofs", ["region_code", "status", "created_at"])
    with op.batch_alter_table("family_link_members") as b:
        b.add_column(sa.Column("created_at", qinqing.kit.db.UTCDateTime(), nullable=True))
    _open_indexes(_NEW_OPEN)


def downgrade() -> None:
    op.execute(sa.text("UPDATE family_links SET status = 'ended' WHERE status = 'pending_proof'"))
    _open_indexes(_OLD_OPEN)
    with op.batch_alter_table("family_link_members") as b:
        b.drop_column("created_at")
    op.drop_index("ix_link_proofs_queue", table_name="link_proofs")
    op.drop_index("ix_link_proofs_link", table_name="link_proofs")
    op.drop_table("link_proofs")
    op.drop_table("person_guardians")
