"""Intents a batch at a time: one row per up to 1000 records instead of one per record.

Revision ID: 0004
Revises: 0003
Created: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.String(64)
Name = sa.String(200)
Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LongJson = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "intent_batches",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("plan_id", Id, nullable=False),
        sa.Column("register", Name, nullable=False),
        sa.Column("policy", Name, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("intents", LongJson, nullable=False),
        sa.Column("recheck", sa.Text, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_index("ix_intent_batches_policy", "intent_batches", ["register", "policy"])


def downgrade() -> None:
    op.drop_index("ix_intent_batches_policy", table_name="intent_batches")
    op.drop_table("intent_batches")
