"""What ties a state database to its installation: the secret's fingerprint, the record
references carried across a secret rotation, and run locks held by lease.

``secret_fingerprint`` holds one row: a salted scrypt digest of ``RETENTION_SECRET`` (never
the secret), so a command run with another secret is refused instead of making record
references no hold, plan or certificate knows. ``ref_aliases`` maps a record's reference
under the current secret to the one its certificate carries from before a rotation (a
certificate's body is hashed into the chain and never rewritten). ``locks.lease_until`` is
when the holder's lease ends unless renewed: only then is a lock stale.

Revision ID: 0006
Revises: 0005
Created: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Name = sa.String(200)
Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "secret_fingerprint",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("scheme", sa.String(64), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("recorded_at", Timestamp, nullable=False),
        sa.Column("rotated_at", Timestamp),
    )
    op.create_table(
        "ref_aliases",
        sa.Column("register", Name, primary_key=True),
        sa.Column("policy", Name, primary_key=True),
        sa.Column("record_ref", sa.String(64), primary_key=True),
        sa.Column("certified_ref", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("signature", sa.String(200)),
    )
    op.add_column("locks", sa.Column("lease_until", Timestamp))


def downgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("lease_until")
    op.drop_table("ref_aliases")
    op.drop_table("secret_fingerprint")
