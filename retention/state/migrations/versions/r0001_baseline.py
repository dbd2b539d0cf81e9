"""The state schema as ``metadata.create_all`` made it before the schema was versioned.

Frozen: a database created by that ``create_all`` is stamped with this revision, so these
tables, columns, indexes and constraints must stay exactly what it created. Types are spelled
out here rather than imported from ``retention.state``, which moves on with later revisions.

Revision ID: 0001
Revises:
Created: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.String(64)
Name = sa.String(200)
Json = sa.Text
# MariaDB's DATETIME drops fractions of a second unless asked to keep them.
Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# BIGINT on the servers; INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
RowId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("plan_id", Id, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("catalog", sa.String(1000), nullable=False),
        sa.Column("job", Name),
        sa.Column("selection", Json, nullable=False),
        sa.Column("approved_by", Name),
        sa.Column("approved_at", Timestamp),
        sa.Column("comment", sa.Text),
    )
    op.create_table(
        "plan_policies",
        sa.Column("plan_id", Id, sa.ForeignKey("plans.plan_id"), primary_key=True),
        sa.Column("register", Name, primary_key=True),
        sa.Column("policy", Name, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("policy_sha256", sa.String(64), nullable=False),
        sa.Column("legal_basis", sa.Text),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counts", Json, nullable=False),
        sa.Column("message", sa.Text),
    )
    op.create_table(
        "plan_records",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("plan_id", Id, sa.ForeignKey("plans.plan_id"), nullable=False),
        sa.Column("register", Name, nullable=False),
        sa.Column("policy", Name, nullable=False),
        sa.Column("key", Json, nullable=False),
        sa.Column("record_ref", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("trigger_date", sa.Date),
        sa.Column("expires_on", sa.Date),
        sa.Column("hold_id", Id),
        sa.Column("reason", sa.Text),
        sa.Column("secret", sa.Boolean, nullable=False),
    )
    op.create_index("ix_plan_records_plan", "plan_records", ["plan_id", "register", "policy", "id"])
    op.create_table(
        "runs",
        sa.Column("run_id", Id, primary_key=True),
        sa.Column("plan_id", Id, nullable=False),
        sa.Column("job", Name),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("summary", Json),
    )
    op.create_table(
        "holds",
        sa.Column("hold_id", Id, primary_key=True),
        sa.Column("register", Name),
        sa.Column("policy", Name),
        sa.Column("subject_ref", sa.String(64)),
        sa.Column("record_key", Json),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("placed_by", Name, nullable=False),
        sa.Column("placed_at", Timestamp, nullable=False),
        sa.Column("until", sa.Date),
        sa.Column("released_at", Timestamp),
        sa.Column("released_by", Name),
    )
    op.create_table(
        "intents",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("plan_id", Id, nullable=False),
        sa.Column("register", Name, nullable=False),
        sa.Column("policy", Name, nullable=False),
        sa.Column("record_ref", sa.String(64), nullable=False),
        sa.Column("key", Json, nullable=False),
        sa.Column("certificate", Json, nullable=False),
        sa.Column("recheck", Json, nullable=False),
        sa.Column("attachments", Json),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_index("ix_intents_policy", "intents", ["register", "policy"])
    op.create_table(
        "certificates",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("certificate_id", sa.String(36), nullable=False, unique=True),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("register", Name, nullable=False),
        sa.Column("policy", Name, nullable=False),
        sa.Column("record_ref", sa.String(64), nullable=False),
        sa.Column("executed_at", Timestamp, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("body", Json, nullable=False),
    )
    op.create_index("ix_certificates_record", "certificates", ["register", "policy", "record_ref"])
    op.create_index("ix_certificates_executed", "certificates", ["executed_at"])
    op.create_table(
        "checkpoints",
        sa.Column("last_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("body", Json, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )
    op.create_table(
        "locks",
        sa.Column("name", Name, primary_key=True),
        sa.Column("owner", Name, nullable=False),
        sa.Column("host", Name, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", Timestamp, nullable=False),
        sa.Column("heartbeat_at", Timestamp, nullable=False),
    )
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "ledger_head", "locks", "checkpoints", "certificates", "intents", "holds", "runs",
        "plan_records", "plan_policies", "plans",
    ):  # fmt: skip
        op.drop_table(table)
