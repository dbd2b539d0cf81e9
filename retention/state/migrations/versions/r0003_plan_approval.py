"""Approval of plans: cooling-off, execution once, and a fingerprint per planned record.

Revision ID: 0003
Revises: 0002
Created: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("runnable_after", Timestamp, nullable=True))
        batch.add_column(sa.Column("executed_run", sa.String(64), nullable=True))
    with op.batch_alter_table("plan_records") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
    op.create_index(
        "ix_plan_records_ref", "plan_records", ["plan_id", "register", "policy", "record_ref"]
    )


def downgrade() -> None:
    op.drop_index("ix_plan_records_ref", table_name="plan_records")
    with op.batch_alter_table("plan_records") as batch:
        batch.drop_column("fingerprint")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("executed_run")
        batch.drop_column("runnable_after")
