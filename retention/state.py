"""The state database: plans, runs, holds, intents and the certificate ledger.

One SQLAlchemy Core schema that works on SQLite, PostgreSQL and MariaDB. The ledger is
append-only by construction: the engine only ever inserts certificates, serialising
appends through the single ``ledger_head`` row that holds the last sequence number and hash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

from retention.errors import RetentionError

metadata = sa.MetaData()

Id = sa.String(64)
Name = sa.String(200)
Json = sa.Text  # canonical JSON text: portable, and hashed byte for byte
# MariaDB's DATETIME drops fractions of a second unless asked to keep them.
Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("plan_id", Id, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # dry-run | run
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("catalog", sa.String(1000), nullable=False),
    sa.Column("job", Name),
    sa.Column("selection", Json, nullable=False),
    sa.Column("approved_by", Name),
    sa.Column("approved_at", Timestamp),
    sa.Column("comment", sa.Text),
)

plan_policies = sa.Table(
    "plan_policies",
    metadata,
    sa.Column("plan_id", Id, sa.ForeignKey("plans.plan_id"), primary_key=True),
    sa.Column("register", Name, primary_key=True),
    sa.Column("policy", Name, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("policy_sha256", sa.String(64), nullable=False),
    sa.Column("legal_basis", sa.Text),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # planned|completed|failed|stopped|skipped
    sa.Column("counts", Json, nullable=False),
    sa.Column("message", sa.Text),
)

plan_records = sa.Table(
    "plan_records",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
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
    sa.Column("secret", sa.Boolean, nullable=False, default=False),  # reports show key only
    sa.Index("ix_plan_records_plan", "plan_id", "register", "policy", "id"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", Id, primary_key=True),
    sa.Column("plan_id", Id, nullable=False),
    sa.Column("job", Name),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Column("status", sa.String(16), nullable=False),  # running|completed|partial|stopped|failed
    sa.Column("exit_code", sa.Integer),
    sa.Column("summary", Json),
)

holds = sa.Table(
    "holds",
    metadata,
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

intents = sa.Table(
    "intents",
    metadata,
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
    sa.Column("record_ref", sa.String(64), nullable=False),
    sa.Column("key", Json, nullable=False),
    sa.Column("certificate", Json, nullable=False),  # the certificate body, minus its outcome
    sa.Column("recheck", Json, nullable=False),  # connector, table, key columns, strategies
    sa.Column("attachments", Json),  # files on a share the row points at: deleted with it
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_intents_policy", "register", "policy"),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("certificate_id", sa.String(36), nullable=False, unique=True),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("register", Name, nullable=False),
    sa.Column("policy", Name, nullable=False),
    sa.Column("record_ref", sa.String(64), nullable=False),
    sa.Column("executed_at", Timestamp, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_certificates_record", "register", "policy", "record_ref"),
    sa.Index("ix_certificates_executed", "executed_at"),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("last_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", Name, primary_key=True),  # job:<id> or policy:<register>/<policy>
    sa.Column("owner", Name, nullable=False),
    sa.Column("host", Name, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", Timestamp, nullable=False),
    sa.Column("heartbeat_at", Timestamp, nullable=False),
)

ledger_head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

GENESIS_HASH = "0" * 64


class StateUnavailable(RetentionError):
    """The state database cannot be opened."""


def open_state(url: str, *, create: bool = True) -> Engine:
    """Connect to the state database, creating missing tables (never altering old ones)."""
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
        if create:
            metadata.create_all(engine)
            with engine.begin() as conn:
                if conn.scalar(sa.select(sa.func.count()).select_from(ledger_head)) == 0:
                    conn.execute(
                        ledger_head.insert().values(id=1, last_seq=0, last_hash=GENESIS_HASH)
                    )
    except (sa_exc.SQLAlchemyError, ImportError) as exc:
        safe = sa.engine.make_url(url).render_as_string(hide_password=True)
        raise StateUnavailable(f"cannot open the state database {safe}: {exc}") from exc
    return engine


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: Any) -> datetime:
    """Databases without time zones (SQLite, MariaDB) hand back naive UTC datetimes."""
    moment: datetime = value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
