"""The state database: plans, runs, holds, intents and the certificate ledger.

One SQLAlchemy Core schema that works on SQLite, PostgreSQL and MariaDB, versioned by the
Alembic revisions in ``retention/migrations``: a change to a table here needs a revision there.
The ledger is append-only by construction: the engine only ever inserts certificates,
serialising appends through the single ``ledger_head`` row that holds the last sequence number
and hash.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory
    from sqlalchemy.sql.ddl import DDLIfCallable

from retention.connectors import sql_many
from retention.errors import EXIT_INVALID, RetentionError
from retention.filemodes import create_private_file, private_dirs
from retention.state import migrations
from retention.state.refs import RECORD_PREFIX

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
    sa.Column("kind", sa.String(16), nullable=False),  # dry-run | preview | erasure-dry-run | run
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("catalog", sa.String(1000), nullable=False),
    sa.Column("job", Name),
    sa.Column("selection", Json, nullable=False),
    sa.Column("approved_by", Name),
    sa.Column("approved_at", Timestamp),
    sa.Column("comment", sa.Text),
    sa.Column("runnable_after", Timestamp),  # an approved plan's cooling-off ends then
    sa.Column("executed_run", Id),  # the run that executed this approved plan (at most one)
    # Review (revision 0010): who made and last changed the plan (identity JSON), and when a
    # rejection ended it; approvals and rejections themselves are in the decision journal.
    sa.Column("made_by", Json),
    sa.Column("changed_by", Json),
    sa.Column("changed_at", Timestamp),
    sa.Column("rejected_at", Timestamp),
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
    # HMAC of what the decision read (trigger date, subject, secret, unless and attachment
    # columns): executing an approved plan skips a record whose values changed since.
    sa.Column("fingerprint", sa.String(64)),
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
    # The run's start, signed with the installation's key: only a run that really started
    # can have its certificates signed into another run's checkpoint (it crashed, or it runs
    # beside that one). NULL for runs a version before key pinning started.
    sa.Column("signature", sa.Text),
    sa.Index("ix_runs_started", "started_at"),
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
    # Revision 0010: the identities (JSON) behind placed_by/released_by, and the plan a
    # reviewer excluded the record from (an exclusion is a record-scoped hold).
    sa.Column("placed_identity", Json),
    sa.Column("released_identity", Json),
    sa.Column("plan_id", Id),
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

# A batch's intents are one JSON document: larger than MariaDB's 64 KiB TEXT.
LongJson = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

#: How many records' intents one ``intent_batches`` row holds (about 0.7 MB of JSON).
INTENTS_PER_ROW = 1000

intent_batches = sa.Table(
    "intent_batches",
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
    sa.Column("records", sa.Integer, nullable=False),
    # [{"record_ref", "key", "certificate": {body minus outcome}, "attachments"}, ...]
    sa.Column("intents", LongJson, nullable=False),
    sa.Column("recheck", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_intent_batches_policy", "register", "policy"),
)
"""Intents written a batch at a time: one row per up to :data:`INTENTS_PER_ROW` records
instead of one per record, which halves the rows a run writes to the state database. The
older ``intents`` table is still read, so intents a previous version left are finished."""

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
    # Not unique: `retention verify` recomputes every hash; an index on it only slowed inserts.
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("body", Json, nullable=False),
    # Copies of the body's `action` and `fingerprint`, read with the record reference when
    # the engine asks whether a record is done (retention/done.py). NULL fingerprint: a
    # certificate written before fingerprints existed.
    sa.Column("action", sa.String(16)),
    sa.Column("fingerprint", sa.String(64)),
    # The hash of the batch header (batch_headers) the leaf in `body` names; NULL for a
    # certificate of the chained ledger before revision 0009, whose `body` is the whole
    # certificate. Either way `body` is the Merkle leaf (retention/evidence/leaf.py).
    sa.Column("header", sa.String(64)),
    sa.Index("ix_certificates_executed", "executed_at"),
)


def _on_mariadb(on: bool) -> DDLIfCallable:
    """A ``ddl_if`` test: whether the database is MariaDB (or MySQL) is ``on``."""

    def test(
        ddl: Any, target: Any, bind: Any, tables: Any = None, state: Any = None, *,
        dialect: sa.Dialect, compiler: Any = None, checkfirst: bool = False,
    ) -> bool:  # fmt: skip
        return (dialect.name in ("mysql", "mariadb")) == on

    return test


# What `done` looks certificates up by (revision 0012), and a run of an approved plan its
# records (0013): the first RECORD_PREFIX characters of the reference, as an expression where
# the database indexes one, as a column prefix on MariaDB; a lookup compares the whole
# reference after it (retention.state.refs.refs_in). A plan's records are indexed within
# their plan, so a plan being written inserts into its own part of the index.
sa.Index(
    "ix_certificates_ref", sa.text(f"substr(record_ref, 1, {RECORD_PREFIX})"), _table=certificates
).ddl_if(callable_=_on_mariadb(False))
sa.Index(
    "ix_certificates_ref", certificates.c.record_ref, mysql_length={"record_ref": RECORD_PREFIX}
).ddl_if(callable_=_on_mariadb(True))
sa.Index(
    "ix_plan_records_prefix",
    plan_records.c.plan_id,
    sa.text(f"substr(record_ref, 1, {RECORD_PREFIX})"),
).ddl_if(callable_=_on_mariadb(False))
sa.Index(
    "ix_plan_records_prefix",
    plan_records.c.plan_id,
    plan_records.c.record_ref,
    mysql_length={"record_ref": RECORD_PREFIX},
).ddl_if(callable_=_on_mariadb(True))

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("last_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("public_key", sa.Text, nullable=False),  # PEM
    sa.Column("previous", sa.String(64)),  # NULL: the pinned key; else the key it replaced
    sa.Column("statement", Json, nullable=False),  # canonical JSON, what the signatures sign
    sa.Column("signature", sa.Text, nullable=False),  # by this key
    sa.Column("previous_signature", sa.Text),  # by the key it replaced (a rotation)
    sa.Column("made_at", Timestamp, nullable=False),
)
"""The signing key pinned at ``retention init`` and every signed rotation since: verify
accepts a checkpoint only from a key this chain reaches (see :mod:`retention.evidence.keyring`)."""

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", Name, primary_key=True),  # job:<id> or policy:<register>/<policy>
    sa.Column("owner", Name, nullable=False),
    sa.Column("host", Name, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", Timestamp, nullable=False),
    sa.Column("heartbeat_at", Timestamp, nullable=False),
    # The holder's lease ends then unless renewed; only then is the lock stale (revision 0006).
    sa.Column("lease_until", Timestamp),
)

secret_fingerprint = sa.Table(
    "secret_fingerprint",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("scheme", sa.String(64), nullable=False),  # how digest was derived
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(128), nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("rotated_at", Timestamp),  # plans made before it were made under the old secret
)
"""The installation's ``RETENTION_SECRET`` as a salted, slow digest: never the secret."""

ref_aliases = sa.Table(
    "ref_aliases",
    metadata,
    sa.Column("register", Name, primary_key=True),
    sa.Column("policy", Name, primary_key=True),
    sa.Column("record_ref", sa.String(64), primary_key=True),  # under the current secret
    sa.Column("certified_ref", sa.String(64), nullable=False),  # as its certificate has it
    # Its fingerprint under the current secret (retention/done.py), if its certificate has one.
    sa.Column("fingerprint", sa.String(64)),
    # Ed25519 signature of the row by the signing key of the rotation: `verify` checks it, so
    # a row written outside the engine cannot make a record done (or replayable) by alias.
    sa.Column("signature", sa.String(200)),
)
"""Records certified before a secret rotation: their reference now → the certified one."""

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(32), nullable=False),  # approval|rejection|exclusion|hold-...
    sa.Column("plan_id", Id),
    sa.Column("hold_id", Id),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("entry", Json, nullable=False),  # canonical JSON: what hash and signature cover
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Index("ix_decisions_plan", "plan_id", "seq"),
)
"""The decision journal (revision 0010): every approval, rejection, exclusion and hold, with
who made it, hash-chained and signed (see :mod:`retention.evidence.decisions`)."""

decisions_head = sa.Table(
    "decisions_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

# The web workspace's local accounts (revision 0011), for an installation without an identity
# provider: a name, a role and an argon2 hash of the password, never the password.
web_accounts = sa.Table(
    "web_accounts",
    metadata,
    sa.Column("name", Name, primary_key=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", Name, nullable=False),  # the operating-system user who added it
    sa.Column("disabled_at", Timestamp),  # a disabled account signs in no more
)

ledger_head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    # The Merkle tree's frontier over every leaf: a JSON list of the hex roots of its perfect
    # subtrees, largest first (retention/evidence/merkle.py). Revision 0009 computes it.
    sa.Column("tree", Json),
)

batch_headers = sa.Table(
    "batch_headers",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),  # sha256 of `body`
    sa.Column("body", Json, nullable=False),
)
"""What every certificate of a batch shares (register, policy, run, plan, ...), stored once:
each leaf names its header by hash (revision 0009)."""

ledger_nodes = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
"""The Merkle tree's perfect subtrees of 2^8 leaves or more, each written by the batch that
completed it (a few rows per thousand leaves): node ``idx`` of its level covers leaves
``[idx << level, (idx + 1) << level)``. Proofs are composed from them instead of re-reading
every leaf; a wrong one only makes a proof fail against the signed root (revision 0009)."""

GENESIS_HASH = "0" * 64


class StateUnavailable(RetentionError):
    """The state database cannot be opened, or refuses to record what a command did."""


#: What an operator reads, and does, when the state database refuses a write.
_REMEDIES = {
    "full": (
        "the state database is full (its disk, quota or size limit): nothing more could be "
        "recorded, so the command stopped at its last committed step. Make free space (or "
        "raise the limit), then run the command again: the next run finishes what this one "
        "left (`retention status` shows it)"
    ),
    "read-only": (
        "the state database is read-only: it refuses writes (a read-only file or directory, a "
        "read-only server or transaction, or a database user without write permission). Make "
        "the SQLite file and its directory writable by the user running retention (SQLite "
        "writes a journal beside the file), or grant the database user write access, or point "
        "`state:` at a writable database; then run the command again"
    ),
    "cannot-open": (
        "the state database file cannot be opened, or its journal cannot be made beside it (a "
        "missing or read-only directory, or no permission): make the directory and the file "
        "writable by the user running retention, then run the command again"
    ),
}
#: SQLSTATEs (PostgreSQL) and error numbers (MariaDB/MySQL) of those causes.
_SQLSTATES = {"53100": "full", "25006": "read-only", "42501": "read-only"}
_MYSQL_ERRORS = {
    1021: "full",  # ER_DISK_FULL
    1114: "full",  # ER_RECORD_FILE_FULL: the table is full
    1036: "read-only",  # ER_OPEN_AS_READONLY
    1142: "read-only",  # ER_TABLEACCESS_DENIED_ERROR: no INSERT/UPDATE for this user
    1290: "read-only",  # ER_OPTION_PREVENTS_STATEMENT: --read-only
    1792: "read-only",  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
}


def state_failure(exc: BaseException) -> StateUnavailable | None:
    """A state-database failure an operator can remedy (full, read-only, cannot be opened),
    told as its cause and what to do; None for every other error. The driver's message is not
    repeated: it can quote a row's values."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    cause = _cause(exc.orig)
    return None if cause is None else StateUnavailable(_REMEDIES[cause])


def _cause(orig: BaseException | None) -> str | None:
    name = getattr(orig, "sqlite_errorname", None)  # sqlite3, Python 3.11+
    if isinstance(name, str):
        for prefix, cause in (("SQLITE_FULL", "full"), ("SQLITE_READONLY", "read-only"),
                              ("SQLITE_CANTOPEN", "cannot-open")):  # fmt: skip
            if name.startswith(prefix):
                return cause
        return None
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str):
        return _SQLSTATES.get(sqlstate)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return _MYSQL_ERRORS.get(args[0])
    return None


def private_sqlite_file(url: str) -> None:
    """Create a SQLite state database file 0600 (and its directory 0700 where it is made here)
    before SQLAlchemy opens it: SQLite would create it with the umask's mode, world-readable
    under the usual 022. SQLite gives its journal the database file's mode. Other backends,
    in-memory databases, URI filenames and existing files are left alone."""
    parsed = sa.engine.make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:") or parsed.query.get("uri"):
        return
    path = Path(database)
    if not path.exists():
        private_dirs(path.parent)
        create_private_file(path)


class StateNotInitialised(StateUnavailable):
    """The state database does not exist or is empty: only ``retention init`` makes one."""

    exit_code = EXIT_INVALID


class _Refused(Exception):
    """The database's schema is not one this engine can bring to the newest revision."""


#: How long an opener waits while another process migrates the same database (seconds).
MIGRATION_WAIT = 60
_IN_PROCESS = threading.Lock()
# First key of PostgreSQL's two-key advisory lock ("rtnS"); the second is the schema's hash.
_PG_LOCK_CLASS = 0x72746E53


def open_state(url: str, *, create: bool = False) -> Engine:
    """Connect to the state database and bring its schema to the newest revision.

    Only ``create`` (``retention init``) makes a state database: without it a missing SQLite
    file or a database without our tables is refused with :class:`StateNotInitialised`, and
    nothing is created, so a typo in the state URL can never start from an empty database —
    no holds, no ledger. A database with our tables is migrated whatever its revision.

    A database without our tables gets the whole schema. One made before the schema was
    versioned (the tables, but no ``alembic_version``) is checked against revision 0001 and
    stamped with it. Then every revision the database lacks is applied, and the
    ``ledger_head`` row is made if missing. That happens in one transaction (where the backend
    has transactional DDL) under a lock, so of two processes opening a new database at once
    one migrates and the other finds it done. The revisions change the schema, not the rows.
    """
    engine: Engine | None = None
    safe = masked(url)
    try:
        if not create and _missing_sqlite_file(url):
            raise StateNotInitialised(_not_initialised(safe, "it does not exist"))
        if create:
            private_sqlite_file(url)
        engine = sa.create_engine(url, pool_pre_ping=True)
        if not _bring_to_head(engine, create=create):
            raise StateNotInitialised(_not_initialised(safe, "it has none of its tables"))
    except StateNotInitialised:
        if engine is not None:
            engine.dispose()
        raise
    except (sa_exc.SQLAlchemyError, ImportError, OSError, _Refused) as exc:
        if engine is not None:
            engine.dispose()
        named = state_failure(exc)
        raise StateUnavailable(f"cannot open the state database {safe}: {named or exc}") from exc
    return engine


_SECRET_PARAMETER = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)


def masked(url: str) -> str:
    """The URL as it may be shown: its password, and any query parameter that may hold one
    (``?password=``, ``sslpassword``, ``token``…), replaced by ``***``."""
    try:
        parsed = sa.engine.make_url(url)
    except sa_exc.ArgumentError:
        return "(a state URL that cannot be parsed)"
    hidden = {k: "***" for k in parsed.query if _SECRET_PARAMETER.search(k)}
    return parsed.update_query_dict(hidden).render_as_string(hide_password=True)


def _not_initialised(safe: str, why: str) -> str:
    return (
        f"the state database {safe} is not initialised ({why}): only `retention init` creates "
        "one. If this URL is right, run `retention init`; if not, correct the catalog's "
        "`state:` setting (or the variable it reads) — a wrong URL would run without the "
        "holds and the ledger of the real one"
    )


def _missing_sqlite_file(url: str) -> bool:
    """A SQLite URL naming a file that does not exist (connecting would create it); an
    in-memory database is always new."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    if database in ("", ":memory:"):
        return True
    if parsed.query.get("uri") == "true" or database.startswith("file:"):
        path = database.removeprefix("file:").split("?", 1)[0]
        if "mode=memory" in database or path in ("", ":memory:"):
            return True
        return not Path(path).exists()
    return not Path(database).exists()


def _bring_to_head(engine: Engine, *, create: bool) -> bool:
    """Migrate to the newest revision; False (and nothing done) when the database is empty
    and ``create`` is not given."""
    with engine.connect() as conn:
        if _current(conn) == {migrations.HEAD} and _has_ledger_head(conn):
            return True  # the usual open: up to date, so no lock, no write and no Alembic
        if not create and _is_empty(conn):
            return False
    # Alembic keeps the running migration in module globals (``op``, ``context``): one
    # migration at a time in this process, then one at a time per database.
    with _IN_PROCESS, engine.connect() as conn, _migration_lock(conn):
        _migrate(conn)
        if not _has_ledger_head(conn):
            conn.execute(
                ledger_head.insert().values(id=1, last_seq=0, last_hash=GENESIS_HASH, tree="[]")
            )
    return True


def _migrate(conn: sa.Connection) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

    script = _script()
    current = _current(conn)
    unknown = sorted(current - {s.revision for s in script.walk_revisions()})
    if unknown:
        raise _Refused(
            f"its schema is at revision {', '.join(unknown)}, which this version of retention "
            f"does not know (it knows up to {', '.join(script.get_heads())}): it was migrated "
            "by a newer retention"
        )
    legacy = False
    tables = set(sa.inspect(conn).get_table_names())
    if not current and tables:
        baseline = _baseline_schema()
        legacy = bool(tables & baseline.keys())  # made by the unversioned create_all of old
        problems = _differences(conn, baseline, tables) if legacy else []
        if problems:
            raise _Refused(
                "its tables predate schema versioning but are not those of revision "
                f"{migrations.BASELINE} ({'; '.join(problems)}); nothing was changed"
            )
    try:
        if legacy:
            command.stamp(migrations.config(conn), migrations.BASELINE)
        command.upgrade(migrations.config(conn), "head")
    except CommandError as exc:
        raise _Refused(str(exc)) from exc


def _differences(
    conn: sa.Connection, expected: dict[str, frozenset[str]], tables: set[str]
) -> list[str]:
    inspector = sa.inspect(conn)
    problems = [f"table {name} is missing" for name in sorted(expected.keys() - tables)]
    for name in sorted(expected.keys() & tables):
        present = {column["name"] for column in inspector.get_columns(name)}
        problems += [f"column {name}.{c} is missing" for c in sorted(expected[name] - present)]
    return problems


@contextmanager
def _migration_lock(conn: sa.Connection) -> Iterator[None]:
    """One transaction on ``conn`` holding the backend's migration lock; committed on success."""
    dialect = conn.dialect.name
    held_named_lock = False
    if dialect == "sqlite":
        # The driver begins transactions only before DML: begin one ourselves, for the DDL
        # too, taking the database's write lock at once (a second opener waits for it, as
        # long as a migration may take: revision 0009 hashes the whole ledger).
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {MIGRATION_WAIT * 1000}")
        conn.commit()  # ends the statement's autobegun transaction (nothing to commit)
    try:
        with conn.begin():
            if dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif dialect == "postgresql":
                conn.execute(
                    sa.text(
                        "SELECT pg_advisory_xact_lock(:lock_class, "
                        "hashtext(coalesce(current_schema(), '')))"
                    ),
                    {"lock_class": _PG_LOCK_CLASS},
                )
            elif dialect in ("mysql", "mariadb"):
                # DDL commits at once on MariaDB: a named lock, held until released, stands
                # in for the transaction.
                got = conn.scalar(
                    sa.text(f"SELECT GET_LOCK({_MYSQL_LOCK_NAME}, :wait)"),
                    {"wait": MIGRATION_WAIT},
                )
                if got != 1:
                    raise _Refused(
                        f"another process has been migrating it for over {MIGRATION_WAIT} s"
                    )
                held_named_lock = True
            yield
    finally:
        if dialect == "sqlite":  # the pooled connection goes back to the driver's wait
            conn.exec_driver_sql("PRAGMA busy_timeout = 5000")
            conn.commit()
        if held_named_lock:
            try:
                conn.execute(sa.text(f"SELECT RELEASE_LOCK({_MYSQL_LOCK_NAME})"))
                conn.rollback()
            except sa_exc.DBAPIError:
                conn.invalidate()  # a closed session holds no lock


# Named locks are server-wide: one per database, within MariaDB's 64 characters.
_MYSQL_LOCK_NAME = "CONCAT('retention-migrate-', MD5(COALESCE(DATABASE(), '')))"


def _is_empty(conn: sa.Connection) -> bool:
    """Neither a schema version nor any table of ours: nobody initialised this database."""
    tables = set(sa.inspect(conn).get_table_names())
    return "alembic_version" not in tables and not tables & set(metadata.tables)


def _current(conn: sa.Connection) -> set[str]:
    """The revisions recorded in the database (none before it is versioned)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return set()
    return set(conn.scalars(sa.text("SELECT version_num FROM alembic_version")))


def _has_ledger_head(conn: sa.Connection) -> bool:
    return conn.scalar(sa.select(ledger_head.c.id).where(ledger_head.c.id == 1)) is not None


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrations.config())


@functools.cache
def _baseline_schema() -> dict[str, frozenset[str]]:
    """Table -> columns of revision 0001, learnt by applying it to an in-memory database."""
    from alembic import command

    engine = sa.create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            command.upgrade(migrations.config(conn), migrations.BASELINE)
            inspector = sa.inspect(conn)
            return {
                name: frozenset(column["name"] for column in inspector.get_columns(name))
                for name in inspector.get_table_names()
                if name != "alembic_version"
            }
    finally:
        engine.dispose()


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in the caller's transaction.

    On PostgreSQL through psycopg this is one ``COPY ... FROM STDIN``, two to three times
    faster than the driver's pipelined executemany for the ledger and plan records; identifiers
    are quoted by the dialect and values travel as data, never as SQL text. Elsewhere it is the
    driver's executemany (SQLite's is native, fed converted tuples by
    :mod:`retention.connectors.sql_many`; PyMySQL's already batches into multi-row VALUES).
    """
    if not rows:
        return
    columns = list(rows[0])
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        quote = conn.dialect.identifier_preparer
        statement = (
            f"COPY {quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)}) "
            "FROM STDIN"
        )
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        return
    sql_many.executemany(conn, table.insert(), rows)


def utcnow() -> datetime:
    return datetime.now(UTC)


def start_of_utc_day(day: date) -> datetime:
    """Midnight UTC of ``day``: how ``--since``/``--until`` days bound stored timestamps."""
    return datetime.combine(day, time(), tzinfo=UTC)


def as_utc(value: Any) -> datetime:
    """Databases without time zones (SQLite, MariaDB) hand back naive UTC datetimes."""
    moment: datetime = value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
