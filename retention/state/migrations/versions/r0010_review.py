"""Review and attribution: who made and changed each plan, rejections, the identities behind
holds, exclusions as holds, and the signed decision journal.

Rows written before stay as they were: plans without ``made_by`` were made before review
existed and keep their single approval; holds without an identity were placed by a name
typed at the command line.

Revision ID: 0010
Revises: 0008
Created: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("made_by", sa.Text))
        batch.add_column(sa.Column("changed_by", sa.Text))
        batch.add_column(sa.Column("changed_at", Timestamp))
        batch.add_column(sa.Column("rejected_at", Timestamp))
    with op.batch_alter_table("holds") as batch:
        batch.add_column(sa.Column("placed_identity", sa.Text))
        batch.add_column(sa.Column("released_identity", sa.Text))
        batch.add_column(sa.Column("plan_id", sa.String(64)))
    op.create_table(
        "decisions",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("plan_id", sa.String(64)),
        sa.Column("hold_id", sa.String(64)),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )
    op.create_index("ix_decisions_plan", "decisions", ["plan_id", "seq"])
    head = op.create_table(
        "decisions_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": "0" * 64}])


def downgrade() -> None:
    op.drop_table("decisions_head")
    op.drop_index("ix_decisions_plan", table_name="decisions")
    op.drop_table("decisions")
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("plan_id")
        batch.drop_column("released_identity")
        batch.drop_column("placed_identity")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("rejected_at")
        batch.drop_column("changed_at")
        batch.drop_column("changed_by")
        batch.drop_column("made_by")
