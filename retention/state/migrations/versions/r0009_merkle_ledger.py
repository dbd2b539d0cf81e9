"""The ledger becomes an RFC 9162 Merkle tree: leaves, batch headers and the tree's frontier.

New certificates are stored as a compact leaf (``certificates.body``) naming a batch header
(``certificates.header`` → ``batch_headers``) that holds what the batch's certificates share.
The certificates already written become the tree's first leaves, in seq order, unchanged:
each one's leaf is its stored canonical body, so its chained hash keeps verifying as before,
and ``header`` stays NULL for it. This revision hashes them once into the tree and stores
the tree's frontier (the roots of its perfect subtrees, at most one per bit of the size) in
``ledger_head.tree``: a pass over every certificate, in pages, in flat memory.

Revision ID: 0009
Revises: 0008
Created: 2026-12-07
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.String(64)
Name = sa.String(200)
Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_PAGE = 5000
_NODE_LEVEL = 8


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
        sa.Column("header", sa.String(64)),
        sa.Index("ix_certificates_record", "register", "policy", "record_ref"),
        sa.Index("ix_certificates_executed", "executed_at"),
    )


def _frontier(
    bodies: Sequence[str], first: int, hashes: list[bytes], heights: list[int]
) -> list[dict[str, object]]:
    """Append leaves ``first``, ``first`` + 1, ... to the frontier (RFC 9162 §2.1.1: leaf
    0x00, node 0x01), as retention/evidence/merkle.py does, and return the perfect subtrees
    of 2^8 leaves or more they complete; kept here so this revision never changes."""
    nodes: list[dict[str, object]] = []
    for position, body in enumerate(bodies, first):
        hashed = hashlib.sha256(b"\x00" + body.encode("utf-8")).digest()
        height = 0
        while heights and heights[-1] == height:
            hashed = hashlib.sha256(b"\x01" + hashes.pop() + hashed).digest()
            heights.pop()
            height += 1
            if height >= _NODE_LEVEL:
                nodes.append({"level": height, "idx": position >> height, "hash": hashed.hex()})
        hashes.append(hashed)
        heights.append(height)
    return nodes


def upgrade() -> None:
    op.create_table(
        "batch_headers",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.add_column("certificates", sa.Column("header", sa.String(64)))
    op.add_column("ledger_head", sa.Column("tree", sa.Text))
    certificates = sa.table("certificates", sa.column("seq", sa.BigInteger),
                            sa.column("body", sa.Text))  # fmt: skip
    head = sa.table("ledger_head", sa.column("id", sa.Integer), sa.column("tree", sa.Text))
    conn = op.get_bind()
    stored = sa.table("ledger_nodes", sa.column("level", sa.SmallInteger),
                      sa.column("idx", sa.BigInteger), sa.column("hash", sa.String))  # fmt: skip
    hashes: list[bytes] = []
    heights: list[int] = []
    last = count = 0
    while True:
        rows = conn.execute(
            sa.select(certificates.c.seq, certificates.c.body)
            .where(certificates.c.seq > last)
            .order_by(certificates.c.seq)
            .limit(_PAGE)
        ).all()
        nodes = _frontier([row.body for row in rows], count, hashes, heights)
        count += len(rows)
        if nodes:
            conn.execute(stored.insert(), nodes)
        if len(rows) < _PAGE:
            break
        last = rows[-1].seq
    op.execute(
        head.update().where(head.c.id == 1).values(tree=json.dumps([h.hex() for h in hashes]))
    )


def downgrade() -> None:
    conn = op.get_bind()
    header = sa.table("certificates", sa.column("header", sa.String))
    if conn.scalar(sa.select(sa.func.count()).where(header.c.header.is_not(None))):
        raise RuntimeError(
            "the ledger holds certificates written as Merkle leaves: revision 0008 cannot read "
            "them, so the state database cannot be downgraded past 0009"
        )
    if conn.dialect.name == "sqlite":  # keep the unnamed unique certificate_id
        with op.batch_alter_table(
            "certificates", copy_from=_certificates(), recreate="always"
        ) as batch:
            batch.drop_column("header")
        with op.batch_alter_table("ledger_head") as batch:
            batch.drop_column("tree")
    else:
        op.drop_column("certificates", "header")
        op.drop_column("ledger_head", "tree")
    op.drop_table("ledger_nodes")
    op.drop_table("batch_headers")
