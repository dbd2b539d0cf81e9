"""``done`` is a certificate of this very record, by the action its policy takes today.

A key that comes back after its record was disposed of (a natural key or SQLite rowid issued
again) names a new record: it waits until it is due, then is disposed of and certified anew,
and ``replay`` leaves it alone. A record anonymised under a rule that now deletes is deleted.
Certificates written before fingerprints keep meaning done for their reference.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from freezegun import freeze_time

from retention import api
from retention.state.database import certificates
from retention.testing import ScratchDatabase, quote_url
from retention.workspace import Workspace

TODAY = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
NEXT_SUMMER = datetime(2027, 6, 2, 10, 0, tzinfo=UTC)

POLICY = """\
register: {{id: crm, name: CRM, controller: C, source: S}}
policies:
  - {{id: contracts, connector: src, table: contracts, key: id, subject: person_id,
     trigger: ended_on, retain: P1Y, action: {action}{anonymise}}}
"""


def write_catalog(root: Path, db: ScratchDatabase, state: ScratchDatabase, action: str) -> Path:
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    anonymise = ", anonymise: {name: erase}" if action == "anonymise" else ""
    text = POLICY.format(action=action, anonymise=anonymise)
    (root / "policies" / "crm.yaml").write_text(text, encoding="utf-8")
    (root / "connectors" / "src.yaml").write_text(f"id: src\nkind: sql\nurl: {quote_url(db.url)}\n")
    (root / "retention.yaml").write_text(f"state: {quote_url(state.url)}\nmax_due_share: 1\n")
    return root


def build(db: ScratchDatabase) -> sa.Table:
    md = sa.MetaData()
    table = sa.Table(
        "contracts", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(50)),
        sa.Column("ended_on", sa.Date),
    )  # fmt: skip
    engine = db.engine()
    md.create_all(engine)
    engine.dispose()
    return table


def insert(db: ScratchDatabase, table: sa.Table, **row: Any) -> None:
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(table.insert().values(**row))
    engine.dispose()


def rows(db: ScratchDatabase, table: sa.Table) -> list[tuple[Any, ...]]:
    engine = db.engine()
    with engine.connect() as conn:
        found = [tuple(r) for r in conn.execute(sa.select(table.c.id, table.c.name))]
    engine.dispose()
    return found


def ledger(ws: Workspace) -> list[dict[str, Any]]:
    return list(ws.ledger.iter_certificates())


def test_a_reused_key_is_a_new_record(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase,
    environ: dict[str, str],
) -> None:  # fmt: skip
    """A contract deleted, then a new contract under its id: not done, not replayed, kept
    until it is due next summer, then deleted and certified with a certificate of its own."""
    table = build(source_db)
    insert(source_db, table, id=1, person_id="P-1", name="Old", ended_on=date(2020, 1, 1))
    root = write_catalog(tmp_path / "c", source_db, state_db, "delete")
    api.init(root, {})
    with Workspace.open(root, environ) as ws:
        with freeze_time(TODAY):
            assert api.run(ws).disposed == 1
            (first,) = ledger(ws)
            insert(source_db, table, id=1, person_id="P-2", name="New", ended_on=date(2026, 6, 1))
            plan, _ = api.plan(ws)
            assert (plan.policies[0].counts.retain, plan.policies[0].counts.done) == (1, 0)
            replayed = api.replay(ws, TODAY.date())
            assert replayed.policies[0].counts.restored == 0
            assert rows(source_db, table) == [(1, "New")]
        with freeze_time(NEXT_SUMMER):
            outcome = api.run(ws)
            (policy,) = outcome.policies
            assert (policy.counts.expire, policy.counts.done, outcome.disposed) == (1, 0, 1)
            assert rows(source_db, table) == []
            certs = ledger(ws)
    assert len(certs) == 2
    second = certs[1]
    assert second["record_ref"] == first["record_ref"]
    assert len(first["fingerprint"]) == 64 and second["fingerprint"] != first["fingerprint"]
    assert (second["trigger_date"], second["reason"]) == ("2026-06-01", "retention")
    assert "replaces" not in second


def test_a_restored_record_is_still_replayed(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase,
    environ: dict[str, str],
) -> None:  # fmt: skip
    """The very record back from a backup (same values) is replayed, as before."""
    table = build(source_db)
    insert(source_db, table, id=1, person_id="P-1", name="Old", ended_on=date(2020, 1, 1))
    root = write_catalog(tmp_path / "c", source_db, state_db, "delete")
    api.init(root, {})
    with Workspace.open(root, environ) as ws, freeze_time(TODAY):
        api.run(ws)
        insert(source_db, table, id=1, person_id="P-1", name="Old", ended_on=date(2020, 1, 1))
        plan, _ = api.plan(ws)
        assert plan.policies[0].counts.done == 1
        replayed = api.replay(ws, TODAY.date())
        assert replayed.policies[0].counts.restored == 1
        assert rows(source_db, table) == []
        assert ledger(ws)[-1]["replaces"] == ledger(ws)[0]["certificate_id"]


def test_anonymised_rows_are_deleted_when_the_rule_changes_to_delete(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase,
    environ: dict[str, str],
) -> None:  # fmt: skip
    """Anonymised under `action: anonymise`, done while that rule stands; once the rule
    deletes, the next run deletes and certifies them, and the run after finds nothing."""
    table = build(source_db)
    insert(source_db, table, id=1, person_id="P-1", name="Old", ended_on=date(2020, 1, 1))
    root = write_catalog(tmp_path / "c", source_db, state_db, "anonymise")
    api.init(root, {})
    with Workspace.open(root, environ) as ws, freeze_time(TODAY):
        assert api.run(ws).disposed == 1
        again = api.run(ws)
        assert (again.disposed, again.policies[0].counts.done) == (0, 1)
        assert rows(source_db, table) == [(1, None)]
    write_catalog(root, source_db, state_db, "delete")
    with Workspace.open(root, environ) as ws, freeze_time(TODAY):
        outcome = api.run(ws)
        assert (outcome.policies[0].counts.expire, outcome.disposed) == (1, 1)
        assert rows(source_db, table) == []
        assert api.run(ws).disposed == 0
        certs = ledger(ws)
    assert [c["action"] for c in certs] == ["anonymised", "deleted"]
    assert certs[0]["fingerprint"] == certs[1]["fingerprint"]  # one record, two rules


def test_certificates_without_a_fingerprint_still_mean_done(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase,
    environ: dict[str, str],
) -> None:  # fmt: skip
    """A ledger written before fingerprints: its anonymised records stay done (nothing is
    certified again on upgrade), and a rule that now deletes still deletes them."""
    table = build(source_db)
    insert(source_db, table, id=1, person_id="P-1", name="Old", ended_on=date(2020, 1, 1))
    root = write_catalog(tmp_path / "c", source_db, state_db, "anonymise")
    api.init(root, {})
    with Workspace.open(root, environ) as ws, freeze_time(TODAY):
        api.run(ws)
        with ws.state.begin() as conn:  # as revision 0006 leaves an older certificate
            conn.execute(sa.update(certificates).values(fingerprint=None))
        again = api.run(ws)
        assert (again.disposed, again.policies[0].counts.done) == (0, 1)
    write_catalog(root, source_db, state_db, "delete")
    with Workspace.open(root, environ) as ws, freeze_time(TODAY):
        assert api.run(ws).disposed == 1
    assert rows(source_db, table) == []


SHARE_POLICY = """\
register: {id: docs, name: Documents, controller: C, source: S}
policies:
  - id: signed
    connector: share
    path: "signed/*.pdf"
    trigger: "path:(?P<date>\\\\d{4}-\\\\d{2}-\\\\d{2})-"
    retain: P1Y
    action: delete
"""


def test_a_file_written_again_at_a_deleted_files_path_is_a_new_record(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    """The path (and the day in its name) come back, the file is new: it is deleted again
    and certified again, where it was once `done` for ever; a restored copy (its times kept)
    is the record the certificate disposed of."""
    import os

    root = tmp_path / "c"
    share = tmp_path / "share"
    (share / "signed").mkdir(parents=True)
    document = share / "signed" / "2020-01-01-contract.pdf"
    document.write_bytes(b"first")
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True)
    (root / "policies" / "docs.yaml").write_text(SHARE_POLICY, encoding="utf-8")
    (root / "connectors" / "share.yaml").write_text(f"id: share\nkind: files\nroot: {share}\n")
    (root / "retention.yaml").write_text("state: sqlite:///state.db\nmax_due_share: 1\n")
    api.init(root, {})
    with Workspace.open(root, environ) as ws, freeze_time(TODAY):
        assert api.run(ws).disposed == 1
        assert not document.exists()
        document.write_bytes(b"second")  # a new file under the old name
        os.utime(document, (TODAY.timestamp(), TODAY.timestamp()))
        outcome = api.run(ws)
        assert (outcome.policies[0].counts.done, outcome.disposed) == (0, 1)
        assert not document.exists()
        document.write_bytes(b"second")  # the same file back from a backup, times and all
        os.utime(document, (TODAY.timestamp(), TODAY.timestamp()))
        plan, _ = api.plan(ws)
        assert plan.policies[0].counts.done == 1
        certs = ledger(ws)
    assert len(certs) == 2 and certs[0]["fingerprint"] != certs[1]["fingerprint"]
