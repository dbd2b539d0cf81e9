"""Certificates carry the action and a fingerprint of the record they disposed of.

``done`` now means "this very record was disposed of by the action the policy takes today"
(retention/done.py): a new record under a reused key, or a record anonymised under a rule
that now deletes, is decided again. Both values are in each new certificate's signed body;
these columns copy them so the engine reads them with the record reference, one indexed
query per batch, without parsing bodies.

The action of the certificates already written is filled in from their bodies (canonical
JSON, so the text ``"action":"deleted"`` occurs in a body only as that field: a value
containing those quotes would be escaped). Their fingerprint stays NULL: it cannot be
computed without the records, and such a certificate keeps meaning done for its record
reference, as it did.

Revision ID: 0007
Revises: 0006
Created: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.String(64)
Name = sa.String(200)
Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

ACTIONS = ("deleted", "anonymised", "archived")


def _certificates() -> sa.Table:
    """The certificates table as this revision leaves it: what SQLite rebuilds from."""
    return sa.Table(
        "certificates",
        sa.MetaData(),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("certificate_id", sa.String(36), nullable=False, unique=True),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("register", Name, nullable=False),
        sa.Column("policy", Name, nullable=False),
        sa.Column("record_ref", sa.String(64), nullable=False),
        sa.Column("executed_at", Timestamp, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("action", sa.String(16)),
        sa.Column("fingerprint", sa.String(64)),
        sa.Index("ix_certificates_record", "register", "policy", "record_ref"),
        sa.Index("ix_certificates_executed", "executed_at"),
    )


def upgrade() -> None:
    op.add_column("certificates", sa.Column("action", sa.String(16)))
    op.add_column("certificates", sa.Column("fingerprint", sa.String(64)))
    table = sa.table("certificates", sa.column("action", sa.String), sa.column("body", sa.Text))
    for action in ACTIONS:
        op.execute(
            table.update()
            .where(table.c.body.contains(f'"action":"{action}"', autoescape=True))
            .values(action=action)
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # keep the unnamed unique certificate_id
        with op.batch_alter_table(
            "certificates", copy_from=_certificates(), recreate="always"
        ) as batch:
            batch.drop_column("fingerprint")
            batch.drop_column("action")
        return
    op.drop_column("certificates", "fingerprint")
    op.drop_column("certificates", "action")
