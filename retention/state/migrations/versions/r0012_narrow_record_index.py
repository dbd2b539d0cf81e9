"""The index ``done`` reads certificates by, narrowed to the first 12 characters of the
record reference: ``(register, policy, record_ref)`` took a random page of a wide index per
certificate inserted; the prefix (48 bits of a keyed hash, so nearly unique) is a fifth as
wide, and every lookup compares the whole reference after it (docs/performance.md).

SQLite and PostgreSQL index the expression ``substr(record_ref, 1, 12)``; MariaDB a 12-character
prefix of the column. Nothing is added to a row: the index is derived from the reference
alone, so there is no new column to backfill or to alter. SQLAlchemy cannot reflect an index on
an expression: a later revision that rebuilds SQLite's ``certificates`` table (batch mode)
must create this index again.

Revision ID: 0012
Revises: 0011
Created: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_certificates_ref"
PREFIX = 12


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in ("mysql", "mariadb"):
        # Every DDL statement commits at once here: an upgrade killed between the two is
        # finished, not repeated, by the next open.
        present = {i["name"] for i in sa.inspect(bind).get_indexes("certificates")}
        if NAME not in present:
            op.create_index(
                NAME, "certificates", ["record_ref"], mysql_length={"record_ref": PREFIX}
            )
        if "ix_certificates_record" in present:
            op.drop_index("ix_certificates_record", table_name="certificates")
        return
    op.create_index(NAME, "certificates", [sa.text(f"substr(record_ref, 1, {PREFIX})")])
    op.drop_index("ix_certificates_record", table_name="certificates")
    if bind.dialect.name == "postgresql":
        # The planner knows nothing of a new expression's values until the table is analysed,
        # and would read the whole ledger for a batch's lookup until autovacuum gets to it.
        op.execute("ANALYZE certificates")


def downgrade() -> None:
    op.create_index("ix_certificates_record", "certificates", ["register", "policy", "record_ref"])
    op.drop_index(NAME, table_name="certificates")
