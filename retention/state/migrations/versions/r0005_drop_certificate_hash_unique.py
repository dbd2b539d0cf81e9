"""Drop the unique constraint on certificates.hash: it cost a random-page index insert per
certificate and could never fire.

A hash is the sha256 of its certificate, seq and prev_hash included, so two certificates
share one only by a sha256 collision; ``retention verify`` recomputes every hash and its link
anyway, and nothing looks a certificate up by its hash. The index under the constraint grew
with the ledger and put one random B-tree page into every certificate's insert.
``certificate_id`` stays unique. On SQLite the table is rebuilt: the upgrade copies the whole
ledger once, in its transaction, and needs that much free disk for the while.

Revision ID: 0005
Revises: 0004
Created: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.String(64)
Name = sa.String(200)
Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

#: What the constraint is called where create_all made it unnamed: PostgreSQL names it
#: <table>_<column>_key, MariaDB after the column.
_NAMES = {"postgresql": "certificates_hash_key", "mysql": "hash", "mariadb": "hash"}


def _certificates(*, unique_hash: bool) -> sa.Table:
    """The certificates table as revisions 0001 to 0005 leave it: what SQLite rebuilds from."""
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
        sa.Column("hash", sa.String(64), nullable=False, unique=unique_hash),
        sa.Column("body", sa.Text, nullable=False),
        sa.Index("ix_certificates_record", "register", "policy", "record_ref"),
        sa.Index("ix_certificates_executed", "executed_at"),
    )


def _hash_constraints() -> list[str]:
    """The names of the unique constraints on exactly ``hash`` (one, unless already gone)."""
    inspector = sa.inspect(op.get_bind())
    return [
        str(u["name"])
        for u in inspector.get_unique_constraints("certificates")
        if u["column_names"] == ["hash"] and u["name"]
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(unique_hash=False)
        return
    for name in _hash_constraints():
        op.drop_constraint(name, "certificates", type_="unique")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _rebuild(unique_hash=True)
        return
    op.create_unique_constraint(_NAMES[dialect], "certificates", ["hash"])


def _rebuild(*, unique_hash: bool) -> None:
    """SQLite cannot drop a constraint, and create_all left this one unnamed: the table is
    made again in its known shape, its rows copied across in the caller's transaction, and
    the other indexes and the unique ``certificate_id`` created again with it."""
    with op.batch_alter_table(
        "certificates", copy_from=_certificates(unique_hash=unique_hash), recreate="always"
    ):
        pass
