"""Pin the signing key: the ``signing_keys`` chain (the pinned key and its signed rotations)
and a signed start for every run.

Rows written before stay as they were: the key is pinned on first use after the upgrade
(``retention init``, a run's checkpoint, an export or ``retention verify`` with the private
key at hand), and runs started before have no signature.

Revision ID: 0008
Revises: 0007
Created: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("previous", sa.String(64)),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("previous_signature", sa.Text),
        sa.Column("made_at", Timestamp, nullable=False),
    )
    op.add_column("runs", sa.Column("signature", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("signature")
    op.drop_table("signing_keys")
