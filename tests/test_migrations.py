"""The state schema is versioned with Alembic, and an upgrade never loses a row of the ledger."""

from __future__ import annotations

import base64
import hashlib
import itertools
import subprocess
import sys
import time
import uuid
import warnings
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from retention.evidence import signing
from retention.evidence.certificate import canonical, seal
from retention.evidence.ledger import Ledger
from retention.state import migrations
from retention.state.database import (
    GENESIS_HASH,
    StateUnavailable,
    batch_headers,
    certificates,
    checkpoints,
    holds,
    intents,
    ledger_head,
    ledger_nodes,
    locks,
    metadata,
    open_state,
    plan_policies,
    plan_records,
    plans,
    runs,
)
from retention.state.refs import refs_in
from retention.testing import ScratchDatabase

#: Indexes that revisions after 0001 added to the tables of ``retention.state.database``.
ADDED_AFTER_BASELINE = {
    "ix_runs_started", "ix_plan_records_ref", "ix_decisions_plan", "ix_certificates_ref",
    "ix_plan_records_prefix",
}  # fmt: skip
#: The indexes on a prefix of the record reference (revisions 0012 and 0013), by table: on an
#: expression, which SQLAlchemy cannot reflect, on SQLite and PostgreSQL.
LOOKUP_INDEXES = {"certificates": "ix_certificates_ref", "plan_records": "ix_plan_records_prefix"}
#: Columns that revisions after 0001 added, by table.
COLUMNS_ADDED_AFTER_BASELINE = {
    "plans": {
        "runnable_after",
        "executed_run",
        "made_by",
        "changed_by",
        "changed_at",
        "rejected_at",
    },
    "holds": {"placed_identity", "released_identity", "plan_id"},
    "plan_records": {"fingerprint"},
    "locks": {"lease_until"},
    "certificates": {"action", "fingerprint", "header"},
    "runs": {"signature"},
    "ledger_head": {"tree"},
}
#: Added columns an upgrade fills in from what the rows already hold, by table.
FILLED_BY_UPGRADE = {"certificates": {"action"}, "ledger_head": {"tree"}}
#: Tables that revisions after 0001 created.
TABLES_AFTER_BASELINE = {
    "intent_batches", "secret_fingerprint", "ref_aliases", "signing_keys", "batch_headers",
    "ledger_nodes", "decisions", "decisions_head", "web_accounts",
}  # fmt: skip
#: Unique constraints (their columns, by table) that revisions after 0001 dropped.
UNIQUE_DROPPED_AFTER_BASELINE = {"certificates": [("hash",)]}
T0 = datetime(2026, 11, 22, 0, 30, 12, 345678, tzinfo=UTC)


def legacy_metadata() -> sa.MetaData:
    """The schema the unversioned ``metadata.create_all`` made: today's, minus later revisions."""
    legacy = sa.MetaData()
    for table in metadata.sorted_tables:
        if table.name in TABLES_AFTER_BASELINE:
            continue
        copy = table.to_metadata(legacy)
        for index in [i for i in copy.indexes if i.name in ADDED_AFTER_BASELINE]:
            copy.indexes.discard(index)
        for name in COLUMNS_ADDED_AFTER_BASELINE.get(table.name, ()):
            copy._columns.remove(copy.c[name])
        for columns in UNIQUE_DROPPED_AFTER_BASELINE.get(table.name, ()):
            copy.append_constraint(sa.UniqueConstraint(*columns))
        if table.name == "certificates":  # revision 0012 replaced it
            sa.Index("ix_certificates_record", copy.c.register, copy.c.policy, copy.c.record_ref)
    return legacy


def upgrade(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        command.upgrade(migrations.config(conn), revision)


def differences(engine: sa.Engine, target: sa.MetaData) -> list[Any]:
    """What Alembic finds between the database and ``target``. SQLAlchemy cannot reflect an
    index on an expression (the certificates' lookup index on SQLite and PostgreSQL), so it
    is left out here and checked by :func:`lookup_index`."""
    with warnings.catch_warnings(), engine.connect() as conn:
        for name in LOOKUP_INDEXES.values():
            warnings.filterwarnings(
                "ignore", f"Skipped unsupported reflection of expression-based index {name}"
            )
            warnings.filterwarnings("ignore", f".*expression-based index '{name}'")
        found = compare_metadata(MigrationContext.configure(conn), target)
    return [d for d in found if not _is_lookup_index(d)]


def _is_lookup_index(difference: Any) -> bool:
    return (
        isinstance(difference, tuple)
        and difference[0] in ("add_index", "remove_index")
        and difference[1].name in LOOKUP_INDEXES.values()
    )


def assert_lookup_index(engine: sa.Engine, table: str = "certificates") -> None:
    """Revision 0012's (or 0013's) index is there, on the first 12 characters of the reference
    (within the plan, for a plan's records)."""
    found = lookup_index(engine, LOOKUP_INDEXES[table])
    within = [("plan_id", None)] if table == "plan_records" else []
    if engine.dialect.name in ("mysql", "mariadb"):
        assert found == repr([*within, ("record_ref", 12)]), found
    else:
        assert "substr" in found and "record_ref" in found and "12" in found, found
        assert ("plan_id" in found) == bool(within), found


def lookup_index(engine: sa.Engine, index: str = "ix_certificates_ref") -> str:
    """The definition of a lookup index, as the database reports it."""
    with engine.connect() as conn:
        name = engine.dialect.name
        if name == "sqlite":
            return str(conn.scalar(sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :index"
            ), {"index": index}))  # fmt: skip
        if name == "postgresql":
            return str(conn.scalar(sa.text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = :index "
                "AND schemaname = current_schema()"
            ), {"index": index}))  # fmt: skip
        rows = conn.execute(sa.text(
            "SELECT column_name, sub_part FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND index_name = :index ORDER BY seq_in_index"
        ), {"index": index}).all()  # fmt: skip
        return repr([tuple(r) for r in rows])


def revisions(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def reflected(engine: sa.Engine) -> dict[str, Any]:
    """What the database reports of every table but Alembic's: types as DDL, keys, indexes."""
    inspector = sa.inspect(engine)
    return {
        name: {
            "columns": [
                (c["name"], c["type"].compile(dialect=engine.dialect), c["nullable"], c["default"])
                for c in inspector.get_columns(name)
            ],
            "primary key": inspector.get_pk_constraint(name),
            "foreign keys": sorted(map(repr, inspector.get_foreign_keys(name))),
            "indexes": sorted(map(repr, inspector.get_indexes(name))),
            "unique": sorted(map(repr, inspector.get_unique_constraints(name))),
        }
        for name in sorted(inspector.get_table_names())
        if name != "alembic_version"
    }


def populate(engine: sa.Engine, key: Ed25519PrivateKey) -> None:
    """Rows in every table: plans, records, a run, a hold, an intent, certificates, a checkpoint."""
    with engine.begin() as conn:
        if conn.scalar(sa.select(sa.func.count()).select_from(ledger_head)) == 0:
            conn.execute(ledger_head.insert().values(id=1, last_seq=0, last_hash=GENESIS_HASH))
        conn.execute(plans.insert(), [
            {"plan_id": "P20261121-00000001", "kind": "dry-run", "created_at": T0 - timedelta(1),
             "as_of": date(2026, 11, 21), "catalog": "/catalog", "job": None,
             "selection": '{"policies":["*"]}', "approved_by": None, "approved_at": None,
             "comment": None},
            {"plan_id": "P20261122-00000002", "kind": "run", "created_at": T0,
             "as_of": date(2026, 11, 22), "catalog": "/catalog", "job": "nightly",
             "selection": '{"job":"nightly"}', "approved_by": "Sähkö Öljynen",
             "approved_at": T0, "comment": "hyväksytty – approved"},
        ])  # fmt: skip
        conn.execute(plan_policies.insert().values(
            plan_id="P20261122-00000002", register="xamk-alumni", policy="alumni-membership",
            position=0, action="anonymise", policy_sha256="a" * 64, legal_basis="GDPR 6(1)(f)",
            rule="P0D from membership_ended_on, then anonymise", status="completed",
            counts='{"expire":3}', message=None,
        ))  # fmt: skip
        conn.execute(plan_records.insert(), [
            {"plan_id": "P20261122-00000002", "register": "xamk-alumni",
             "policy": "alumni-membership", "key": f"[{i}]", "record_ref": f"{i:064x}",
             "decision": "expire", "trigger_date": date(2019, 5, 31),
             "expires_on": date(2019, 5, 31), "hold_id": None, "reason": None,
             "secret": i == 3}
            for i in (1, 2, 3)
        ])  # fmt: skip
        conn.execute(runs.insert().values(
            run_id="R20261122-00000001", plan_id="P20261122-00000002", job="nightly",
            started_at=T0, finished_at=T0 + timedelta(seconds=5), status="completed",
            exit_code=0, summary='{"disposed":3}',
        ))  # fmt: skip
        conn.execute(holds.insert().values(
            hold_id="H-1", register="xamk-alumni", policy=None, subject_ref="b" * 64,
            record_key=None, reason="Oikeudenkäynti 2026/17", placed_by="kirjaamo",
            placed_at=T0, until=date(2027, 12, 31), released_at=None, released_by=None,
        ))  # fmt: skip
        conn.execute(intents.insert().values(
            run_id="R20261122-00000001", plan_id="P20261122-00000002", register="xamk-alumni",
            policy="alumni-membership", record_ref="c" * 64, key="[4]",
            certificate='{"action":"anonymised"}', recheck='{"table":"alumni"}',
            attachments='["a/4.pdf"]', created_at=T0,
        ))  # fmt: skip
        conn.execute(locks.insert().values(
            name="job:nightly", owner="R20261122-00000001", host="worker-1", pid=4242,
            acquired_at=T0, heartbeat_at=T0 + timedelta(minutes=1),
        ))  # fmt: skip
        legacy = legacy_metadata().tables["certificates"]  # as 0001 had it
        previous = GENESIS_HASH
        for i in (1, 2, 3):
            cert = seal(
                {"certificate_id": str(uuid.UUID(int=i)), "run_id": "R20261122-00000001",
                 "plan_id": "P20261122-00000002", "approved_by": "Sähkö Öljynen",
                 "register": "xamk-alumni", "policy": "alumni-membership",
                 "policy_sha256": "a" * 64, "record_ref": f"{i:064x}", "action": "anonymised",
                 "reason": "retention", "fields": ["first_name", "email"], "archive": None,
                 "trigger_date": "2019-05-31", "expires_on": "2019-05-31",
                 "executed_at": (T0 + timedelta(seconds=i)).isoformat(), "verified": True,
                 "legal_basis": "GDPR 6(1)(f) – oikeutettu etu"}, i, previous,
            )  # fmt: skip
            previous = cert["hash"]
            conn.execute(legacy.insert().values(
                seq=i, certificate_id=cert["certificate_id"], run_id=cert["run_id"],
                register=cert["register"], policy=cert["policy"], record_ref=cert["record_ref"],
                executed_at=T0 + timedelta(seconds=i), hash=previous,
                body=canonical(cert).decode("utf-8"),
            ))  # fmt: skip
        conn.execute(ledger_head.update().values(last_seq=3, last_hash=previous))
        # A checkpoint as the versions before key pinning signed it: no runs, no pin.
        body = {"run_id": "R20261122-00000001", "first_seq": 1, "last_seq": 3,
                "count": 3, "last_hash": previous, "signed_at": T0.isoformat(),
                "key_id": signing.key_id(key.public_key())}  # fmt: skip
        conn.execute(checkpoints.insert().values(
            last_seq=3, run_id=body["run_id"], body=canonical(body).decode(),
            signature=signing.sign(key, canonical(body)),
        ))  # fmt: skip


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: the columns revision 0001 had."""
    with engine.connect() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in legacy_metadata().sorted_tables
        }


def added_columns_are_empty(engine: sa.Engine) -> bool:
    """Columns later revisions added hold nothing for rows written before them."""
    with engine.connect() as conn:
        return all(
            conn.scalar(
                sa.select(sa.func.count())
                .select_from(metadata.tables[name])
                .where(metadata.tables[name].c[column].is_not(None))
            )
            == 0
            for name, columns in COLUMNS_ADDED_AFTER_BASELINE.items()
            for column in columns - FILLED_BY_UPGRADE.get(name, set())
        )


def certificate_uniques(engine: sa.Engine) -> list[list[str]]:
    """The column lists of the unique constraints the database reports on certificates."""
    found = sa.inspect(engine).get_unique_constraints("certificates")
    return sorted(list(u["column_names"]) for u in found)


def test_empty_database_migrates_to_exactly_the_metadata(state_db: ScratchDatabase) -> None:
    """Upgrading an empty database to head gives the schema of retention.state, difference-free."""
    open_state(state_db.url, create=True).dispose()
    engine = state_db.engine()
    try:
        assert differences(engine, metadata) == []
        assert_lookup_index(engine)
        assert revisions(engine) == {migrations.HEAD}
        heads = ScriptDirectory.from_config(migrations.config()).get_heads()
        assert heads == [migrations.HEAD], "set migrations.HEAD to the newest revision"
        with engine.connect() as conn:
            assert conn.execute(sa.select(ledger_head)).all() == [(1, 0, GENESIS_HASH, "[]")]
    finally:
        engine.dispose()


def described(engine: sa.Engine) -> list[Any]:
    """The tables as the database describes them, and the lookup indexes' definitions."""
    return [reflected(engine), *(lookup_index(engine, i) for i in LOOKUP_INDEXES.values())]


@pytest.mark.parametrize("revision", [migrations.BASELINE, "head"])
def test_migrated_schema_is_what_create_all_makes(state_db: ScratchDatabase, revision: str) -> None:
    """Migrating to 0001 (or head) builds what create_all of that schema builds, type for type."""
    # compare_metadata does not compare a type's precision, so it cannot see MariaDB losing
    # the microseconds of DATETIME(6); the database's own description of the tables can.
    schema = legacy_metadata() if revision == migrations.BASELINE else metadata
    engine = state_db.engine()
    try:
        upgrade(engine, revision)
        assert differences(engine, schema) == []
        migrated = described(engine)
        with engine.begin() as conn:
            command.downgrade(migrations.config(conn), "base")
            conn.execute(sa.text("DROP TABLE alembic_version"))
        assert table_names(engine) == set()
        schema.create_all(engine)
        assert migrated == described(engine)
    finally:
        engine.dispose()


def test_upgrade_keeps_every_row_of_a_database_at_0001(state_db: ScratchDatabase) -> None:
    """A database populated at 0001 keeps every row byte for byte through open_state's upgrade."""
    key = Ed25519PrivateKey.generate()
    engine = state_db.engine()
    try:
        upgrade(engine, migrations.BASELINE)
        populate(engine, key)
        before = snapshot(engine)
        assert len(before["certificates"]) == 3 and len(before["checkpoints"]) == 1

        open_state(state_db.url).dispose()

        assert revisions(engine) == {migrations.HEAD}
        assert snapshot(engine) == before
        assert added_columns_are_empty(engine)
        with engine.connect() as conn:  # 0006 copied each certificate's action from its body
            assert set(conn.execute(sa.select(certificates.c.action, certificates.c.fingerprint))
                       ) == {("anonymised", None)}  # fmt: skip
        assert "ix_runs_started" in {i["name"] for i in sa.inspect(engine).get_indexes("runs")}
        assert differences(engine, metadata) == []
        report = Ledger(engine).verify(key.public_key())
        assert report.ok, report.faults
        assert (report.certificates, report.checkpoints) == (3, 1)
        # 0005 dropped the constraint on hash and rebuilt SQLite's table: the other indexes
        # and the unique certificate_id are still there, and still enforced.
        assert certificate_uniques(engine) == [["certificate_id"]]
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("certificates")}
        assert "ix_certificates_executed" in indexes and "ix_certificates_record" not in indexes
        assert_lookup_index(engine)
        assert_lookup_index(engine, "plan_records")
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("plan_records")}
        assert "ix_plan_records_ref" not in indexes
        if engine.dialect.name == "postgresql":  # 0012 analysed the ledger for its new index
            with engine.connect() as conn:
                assert conn.scalar(sa.text(
                    "SELECT count(*) FROM pg_stats WHERE tablename = 'ix_certificates_ref' "
                    "AND schemaname = current_schema()"
                ))  # fmt: skip
        with engine.connect() as conn:
            row = conn.execute(sa.select(certificates).where(certificates.c.seq == 3)).one()
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(certificates.insert().values({**row._asdict(), "seq": 4}))
    finally:
        engine.dispose()


def test_database_made_by_create_all_is_stamped_and_kept(state_db: ScratchDatabase) -> None:
    """A database the old create_all made is stamped at 0001, upgraded, and keeps its rows."""
    key = Ed25519PrivateKey.generate()
    engine = state_db.engine()
    try:
        legacy_metadata().create_all(engine)
        populate(engine, key)
        before = snapshot(engine)

        open_state(state_db.url).dispose()

        assert revisions(engine) == {migrations.HEAD}
        assert snapshot(engine) == before
        assert added_columns_are_empty(engine)
        with engine.connect() as conn:  # 0006 copied each certificate's action from its body
            assert set(conn.execute(sa.select(certificates.c.action, certificates.c.fingerprint))
                       ) == {("anonymised", None)}  # fmt: skip
        assert differences(engine, metadata) == []
        assert certificate_uniques(engine) == [["certificate_id"]]
        assert Ledger(engine).verify(key.public_key()).ok
    finally:
        engine.dispose()


def test_unversioned_database_unlike_0001_is_refused_untouched(state_db: ScratchDatabase) -> None:
    """Unversioned tables that are not revision 0001 are named in the error and left alone."""
    engine = state_db.engine()
    try:
        legacy = legacy_metadata()
        legacy.remove(legacy.tables["locks"])
        legacy.create_all(engine)
        with pytest.raises(
            StateUnavailable, match=r"\(table locks is missing\); nothing was changed"
        ):
            open_state(state_db.url)
        assert "alembic_version" not in table_names(engine)
    finally:
        engine.dispose()


def test_database_from_a_newer_engine_is_refused(state_db: ScratchDatabase) -> None:
    """A revision this engine does not know stops the open instead of guessing."""
    open_state(state_db.url, create=True).dispose()
    engine = state_db.engine()
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(StateUnavailable, match="revision 9999, which this version"):
            open_state(state_db.url)
    finally:
        engine.dispose()


def test_concurrent_first_opens_migrate_once(state_db: ScratchDatabase) -> None:
    """Four processes opening a new database at once all succeed and leave one clean schema."""
    # Processes, not threads: within one process open_state migrates one database at a time,
    # and the database's own lock is what keeps separate processes apart.
    start_at = time.time() + 3
    script = (
        "import sys, time; from retention.state.database import open_state; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
        "open_state(sys.argv[1], create=True).dispose()"
    )
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", script, state_db.url, str(start_at)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [opener.communicate(timeout=120)[1] for opener in openers]
    assert [opener.returncode for opener in openers] == [0, 0, 0, 0], errors
    engine = state_db.engine()
    try:
        with engine.connect() as conn:
            versions = conn.scalars(sa.text("SELECT version_num FROM alembic_version")).all()
            assert versions == [migrations.HEAD]
            assert conn.execute(sa.select(ledger_head)).all() == [(1, 0, GENESIS_HASH, "[]")]
        assert differences(engine, metadata) == []
    finally:
        engine.dispose()


def test_failed_first_migration_leaves_nothing_behind(state_db: ScratchDatabase) -> None:
    """Where DDL is transactional, a migration that fails half way is rolled back whole."""
    if state_db.backend == "mariadb":
        pytest.skip("MariaDB commits every DDL statement at once: there is nothing to roll back")
    engine = state_db.engine()
    try:
        # An index name revision 0001 needs late, taken by an unrelated table: 0001 fails after
        # creating most of its tables (index names are per schema on SQLite and PostgreSQL).
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE other (x INTEGER)"))
            conn.execute(sa.text("CREATE INDEX ix_certificates_executed ON other (x)"))
        with pytest.raises(StateUnavailable, match="ix_certificates_executed"):
            open_state(state_db.url, create=True)
        assert table_names(engine) == {"other"}
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("revision", "table", "columns"),
    [("0012", "certificates", "record_ref(12)"),
     ("0013", "plan_records", "plan_id, record_ref(12)")],
)  # fmt: skip
def test_a_mariadb_upgrade_killed_between_its_two_statements_is_finished(
    state_db: ScratchDatabase, revision: str, table: str, columns: str
) -> None:
    """MariaDB commits each DDL statement at once: a revision that creates the narrow index and
    then drops the wide one, killed in between, leaves the first done and the second not. The
    next open finishes it instead of failing on the index it finds already there."""
    if state_db.backend != "mariadb":
        pytest.skip("SQLite and PostgreSQL run a revision in one transaction")
    engine = state_db.engine()
    try:
        upgrade(engine, f"{int(revision) - 1:04d}")
        with engine.begin() as conn:  # the first statement of the revision, and no more
            conn.execute(sa.text(f"CREATE INDEX {LOOKUP_INDEXES[table]} ON {table} ({columns})"))
        open_state(state_db.url).dispose()
        assert revisions(engine) == {migrations.HEAD}
        assert differences(engine, metadata) == []
        assert_lookup_index(engine, table)
    finally:
        engine.dispose()


def test_revisions_downgrade_to_base_and_back(state_db: ScratchDatabase) -> None:
    """Every revision's downgrade undoes its upgrade, so the chain can be walked both ways."""
    open_state(state_db.url, create=True).dispose()
    engine = state_db.engine()
    try:
        with engine.begin() as conn:
            command.downgrade(migrations.config(conn), "base")
        assert table_names(engine) == {"alembic_version"}
        upgrade(engine, "head")
        assert differences(engine, metadata) == []
    finally:
        engine.dispose()


def test_each_downgrade_restores_the_schema_before_its_revision(state_db: ScratchDatabase) -> None:
    """Upgrading one revision and downgrading it again leaves the database as it was, type for
    type and constraint for constraint (names included, where the database has them)."""
    script = ScriptDirectory.from_config(migrations.config())
    chain = [s.revision for s in reversed(list(script.walk_revisions()))]
    engine = state_db.engine()
    try:
        upgrade(engine, chain[0])
        for before, after in itertools.pairwise(chain):
            schema = reflected(engine)
            upgrade(engine, after)
            assert reflected(engine) != schema, f"revision {after} changed nothing"
            with engine.begin() as conn:
                command.downgrade(migrations.config(conn), before)
            assert reflected(engine) == schema, f"downgrading {after}"
            upgrade(engine, after)
    finally:
        engine.dispose()


def _naive_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1, written from its definition (never the code under test)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _naive_root(leaves[:k]) + _naive_root(leaves[k:])).digest()


def _chain_more(conn: sa.Connection, key: Ed25519PrivateKey, upto: int) -> None:
    """Chained certificates after populate()'s, to seq ``upto``, signed as 0008 signed them."""
    seq, previous = conn.execute(sa.select(ledger_head.c.last_seq, ledger_head.c.last_hash)).one()
    first = seq + 1
    for seq in range(first, upto + 1):
        cert = seal(
            {"certificate_id": str(uuid.UUID(int=seq)), "run_id": "R20261122-00000001",
             "plan_id": "P20261122-00000002", "approved_by": None, "register": "xamk-alumni",
             "policy": "alumni-membership", "policy_sha256": "a" * 64,
             "record_ref": f"{seq:064x}", "action": "anonymised", "reason": "retention",
             "fields": [], "archive": None, "trigger_date": "2019-05-31",
             "expires_on": "2019-05-31", "executed_at": T0.isoformat(), "verified": True,
             "legal_basis": None}, seq, previous,
        )  # fmt: skip
        previous = cert["hash"]
        conn.execute(certificates.insert().values(
            seq=seq, certificate_id=cert["certificate_id"], run_id=cert["run_id"],
            register=cert["register"], policy=cert["policy"], record_ref=cert["record_ref"],
            executed_at=T0, hash=previous, body=canonical(cert).decode("utf-8"),
            action="anonymised",
        ))  # fmt: skip
    conn.execute(ledger_head.update().values(last_seq=upto, last_hash=previous))
    body = {"run_id": "R20261122-00000001", "first_seq": first, "last_seq": upto,
            "count": upto - first + 1, "last_hash": previous, "signed_at": T0.isoformat(),
            "key_id": signing.key_id(key.public_key())}  # fmt: skip
    conn.execute(checkpoints.insert().values(
        last_seq=upto, run_id=body["run_id"], body=canonical(body).decode(),
        signature=signing.sign(key, canonical(body)),
    ))  # fmt: skip


def test_a_chained_ledger_becomes_the_first_leaves_and_grows_as_a_tree(
    state_db: ScratchDatabase,
) -> None:
    """0009 keeps every chained certificate byte for byte as the tree's first leaves (in seq
    order), its old checkpoint still verifies, and the ledger grows by leaves whose signed
    checkpoint's root is the RFC 9162 root of every stored leaf."""
    key = Ed25519PrivateKey.generate()
    engine = state_db.engine()
    try:
        upgrade(engine, "0008")
        populate(engine, key)
        with engine.begin() as conn:  # as the engine at 0008 wrote them
            conn.execute(sa.text("UPDATE certificates SET action = 'anonymised'"))
            _chain_more(conn, key, 300)  # past 256 leaves: 0009 stores a first subtree
        before = snapshot(engine)["certificates"]
        open_state(state_db.url).dispose()
        assert revisions(engine) == {migrations.HEAD}
        assert snapshot(engine)["certificates"] == before
        ledger = Ledger(engine)
        report = ledger.verify(key.public_key())
        assert report.ok, report.faults
        with engine.connect() as conn:
            chained = [r.body.encode() for r in conn.execute(
                sa.select(certificates.c.body).order_by(certificates.c.seq))]  # fmt: skip
        assert report.tree == (300, _naive_root(chained).hex())
        with engine.connect() as conn:
            nodes = conn.execute(sa.select(ledger_nodes)).all()
        assert nodes == [(8, 0, _naive_root(chained[:256]).hex())]

        shared = {"run_id": "R20261207-00000002", "plan_id": "P20261122-00000002",
                  "approved_by": None, "register": "xamk-alumni", "policy": "alumni-membership",
                  "policy_sha256": "a" * 64, "action": "deleted", "reason": "retention",
                  "fields": [], "legal_basis": "GDPR 6(1)(f)", "archive": None,
                  "approvals": [{"by": "Sähkö Öljynen", "role": "records manager"}]}  # fmt: skip
        bodies = [
            {**shared, "certificate_id": str(uuid.UUID(int=10_000 + i)),
             "record_ref": f"{9000 + i:064x}", "fingerprint": "f" * 64,
             "trigger_date": "2019-05-31", "expires_on": "2019-05-31",
             "executed_at": T0.isoformat(), "verified": True}
            for i in (1, 2)
        ]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(runs.insert().values(
                run_id=shared["run_id"], plan_id=shared["plan_id"], started_at=T0,
                status="running"))  # fmt: skip
            Ledger.append(conn, bodies)
        checkpoint = ledger.checkpoint(str(shared["run_id"]), key)
        assert checkpoint is not None and checkpoint["tree_size"] == 302
        with engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == shared["run_id"]).values(
                finished_at=T0, status="completed",
                summary='{"xamk-alumni/alumni-membership":{"disposed":2}}'))  # fmt: skip
            stored = [r.body.encode() for r in conn.execute(
                sa.select(certificates.c.body).order_by(certificates.c.seq))]  # fmt: skip
            headers = conn.scalar(sa.select(sa.func.count()).select_from(batch_headers))
        report = ledger.verify(key.public_key())
        assert report.ok, report.faults
        assert stored[:300] == chained and headers == 1  # one header for the batch
        root = _naive_root(stored)
        assert report.tree == (302, root.hex())
        assert base64.b64encode(root).decode() in checkpoint["note"].split("\n")
        joined = list(ledger.iter_certificates())
        for body, cert in zip(bodies, joined[300:], strict=True):
            assert {k: cert[k] for k in body} == body  # nothing a body said is lost
    finally:
        engine.dispose()


@pytest.mark.parametrize("count", [1, 2, 300])
def test_certificates_are_looked_up_by_the_narrow_index(
    state_db: ScratchDatabase, count: int
) -> None:
    """Every lookup of certificates (and of a plan's records) by record reference reaches them
    through revision 0012's (0013's) prefix index, on every backend, with the parameters bound
    as the engine binds them and for one reference as for many (SQLite turns `IN (?)` into `=`
    and would then not use it): with the wide indexes gone, a lookup the index did not serve
    would read the whole table."""
    engine = open_state(state_db.url, create=True)
    try:
        c = certificates.c
        refs = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(count)]
        query = sa.select(c.seq).where(
            c.register == "r", c.policy == "p", refs_in(c.record_ref, refs, engine.dialect.name)
        )
        assert "ix_certificates_ref" in explained(engine, query)
        p = plan_records.c  # revision 0013: a run of an approved plan, an exclusion
        query = sa.select(p.fingerprint).where(
            p.plan_id == "P", refs_in(p.record_ref, refs, engine.dialect.name),
            p.register == "r", p.policy == "p", p.decision.in_(("expire", "held")),
        )  # fmt: skip
        assert "ix_plan_records_prefix" in explained(engine, query)
    finally:
        engine.dispose()


def explained(engine: sa.Engine, query: sa.Select[Any]) -> str:
    """The database's plan for ``query``, its parameters bound as the engine binds them."""
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    bound = compiled.construct_params()
    params: Any = (
        tuple(bound[name] for name in compiled.positiontup or ())
        if compiled.positional else bound
    )  # fmt: skip
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":  # an empty table: make the planner show it
            conn.exec_driver_sql("SET enable_seqscan = off")
        return repr(conn.exec_driver_sql(explain + str(compiled), params).all())


def test_lookups_of_more_references_than_one_query_takes_find_every_certificate(
    state_db: ScratchDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's references are looked up a chunk at a time (each reference and its prefix
    are two bound parameters): every chunk's certificates are found, the latest of each."""
    from retention.evidence.certificate import new_certificate_id
    from retention.state import refs as refs_module

    monkeypatch.setattr(refs_module, "LOOKUP", 2)
    engine = open_state(state_db.url, create=True)
    try:
        refs = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5)]
        with engine.begin() as conn:
            conn.execute(
                runs.insert().values(
                    run_id="R1", plan_id="P1", started_at=datetime.now(UTC), status="running"
                )
            )
            for executed in ("2026-11-20T10:00:00+00:00", "2026-11-21T10:00:00+00:00"):
                Ledger.append(conn, [{
                    "run_id": "R1", "plan_id": "P1", "register": "r", "policy": "p",
                    "action": "deleted", "reason": "retention",
                    "certificate_id": new_certificate_id(), "record_ref": ref,
                    "fingerprint": executed[:10], "executed_at": executed, "verified": True,
                } for ref in refs])  # fmt: skip
        ledger = Ledger(engine)
        found = ledger.done("r", "p", [*refs, "f" * 64])
        assert sorted(found) == sorted(refs)
        assert all(len(priors) == 2 for priors in found.values())
        assert ledger.certified_as("r", "p", refs) == {ref: ref for ref in refs}
        assert ledger.done("r", "other", refs) == {}
        latest = ledger.latest_since("r", "p", refs, date(2026, 11, 1))
        assert sorted(latest) == sorted(refs)
        assert {prior.fingerprint for prior in latest.values()} == {"2026-11-21"}
    finally:
        engine.dispose()


def test_a_reference_equal_only_under_a_case_insensitive_collation_is_not_this_record(
    state_db: ScratchDatabase,
) -> None:
    """MariaDB compares text case-insensitively: a certificate row whose reference differs
    from the one looked up only in case (never written by the engine, which writes lowercase
    hex) is not that record's, and does not break the lookup."""
    from retention.evidence.certificate import new_certificate_id

    engine = open_state(state_db.url, create=True)
    try:
        ref = hashlib.sha256(b"record").hexdigest()
        with engine.begin() as conn:
            conn.execute(
                runs.insert().values(
                    run_id="R1", plan_id="P1", started_at=datetime.now(UTC), status="running"
                )
            )
            Ledger.append(conn, [{
                "run_id": "R1", "plan_id": "P1", "register": "r", "policy": "p",
                "action": "deleted", "reason": "retention", "certificate_id": new_certificate_id(),
                "record_ref": ref.upper(), "fingerprint": "f",
                "executed_at": "2026-11-20T10:00:00+00:00", "verified": True,
            }])  # fmt: skip
        ledger = Ledger(engine)
        assert ledger.done("r", "p", [ref]) == {}
        assert ledger.certified_as("r", "p", [ref]) == {}
        assert ledger.latest_since("r", "p", [ref], date(2026, 11, 1)) == {}
        assert list(ledger.done("r", "p", [ref.upper()])) == [ref.upper()]
    finally:
        engine.dispose()
