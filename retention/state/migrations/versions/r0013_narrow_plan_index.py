"""The index a run of an approved plan reads its records by, narrowed like the ledger's in
revision 0012: ``(plan_id, register, policy, record_ref)`` took a random page of a wide index
per planned record; ``(plan_id, first 12 characters of record_ref)`` is about a third as wide,
and every lookup compares the whole reference after it (retention/state/refs.py). A plan's
records stay together under its id, so a plan being written inserts into its own part.

SQLite and PostgreSQL index the expression ``substr(record_ref, 1, 12)``; MariaDB a 12-character
prefix of the column. Nothing is added to a row. SQLAlchemy cannot reflect an index on an
expression: a later revision that rebuilds SQLite's ``plan_records`` table (batch mode) must
create this index again.

Revision ID: 0013
Revises: 0012
Created: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_plan_records_prefix"
OLD = "ix_plan_records_ref"
PREFIX = 12


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in ("mysql", "mariadb"):
        # Every DDL statement commits at once here: an upgrade killed between the two is
        # finished, not repeated, by the next open.
        present = {i["name"] for i in sa.inspect(bind).get_indexes("plan_records")}
        if NAME not in present:
            op.create_index(
                NAME, "plan_records", ["plan_id", "record_ref"], mysql_length={"record_ref": PREFIX}
            )
        if OLD in present:
            op.drop_index(OLD, table_name="plan_records")
        return
    op.create_index(NAME, "plan_records", ["plan_id", sa.text(f"substr(record_ref, 1, {PREFIX})")])
    op.drop_index(OLD, table_name="plan_records")
    if bind.dialect.name == "postgresql":
        # The planner knows nothing of a new expression's values until the table is analysed.
        op.execute("ANALYZE plan_records")


def downgrade() -> None:
    op.create_index(OLD, "plan_records", ["plan_id", "register", "policy", "record_ref"])
    op.drop_index(NAME, table_name="plan_records")
