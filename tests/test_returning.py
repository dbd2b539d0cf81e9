"""The database's own report of a change replaces the re-read where it can give one.

``DELETE … RETURNING`` (SQLite 3.35+, PostgreSQL, MariaDB 10.0.5+) and ``UPDATE …
RETURNING`` (SQLite, PostgreSQL; not MariaDB) name the rows one statement changed, with
their values as written. Where the database cannot (MariaDB's UPDATE, an executemany of
values per record), the change is applied as before and the engine re-reads.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.catalog.model import SqlSource
from retention.connectors.base import Anonymise, Delete, Selection
from retention.connectors.sql import SqlConnector
from retention.testing import ScratchDatabase
from retention.workspace import Workspace
from tests.conftest import AS_OF
from tests.test_sql_paging import BOUND, make_table


def connector_for(db: ScratchDatabase) -> SqlConnector:
    return SqlConnector(SqlSource(id="src", kind="sql", url=db.url), db.url)


SELECTION = Selection(table="t", key=("site", "n"), triggers=("ended_on",), bound=BOUND)


def test_sqlite_here_has_returning() -> None:
    """The SQLite the tests run on is new enough for RETURNING (3.35, March 2021)."""
    assert sqlite3.sqlite_version_info >= (3, 35)


def test_a_delete_reports_exactly_the_rows_it_deleted(source_db: ScratchDatabase) -> None:
    """Every backend here reports its DELETE: the due keys asked for come back, a key no
    longer due is neither deleted nor reported."""
    due = sorted(make_table(source_db.url, "t", indexed=True))
    not_due = ("A", next(n for n in range(20) if ("A", n) not in due))
    connector = connector_for(source_db)
    try:
        asked = [*due[:5], not_due]
        reported = connector.apply_reported(SELECTION, asked, Delete(), [])
        left = connector.reread(SELECTION, asked, [])
    finally:
        connector.close()
    assert reported is not None
    assert sorted(reported) == due[:5]
    assert list(left) == [not_due]


def test_an_update_reports_its_rows_as_written_where_the_database_can(
    source_db: ScratchDatabase,
) -> None:
    """SQLite and PostgreSQL return the anonymised values; MariaDB has no UPDATE …
    RETURNING, so the change is applied and nothing is reported (the engine re-reads)."""
    due = sorted(make_table(source_db.url, "t", indexed=True))
    connector = connector_for(source_db)
    try:
        change = Anonymise(constant={"note": None})
        reported = connector.apply_reported(SELECTION, due[:3], change, ["note"])
        after = connector.reread(SELECTION, due[:3], ["note"])
    finally:
        connector.close()
    assert all(row["note"] is None for row in after.values()) and len(after) == 3
    if source_db.backend == "mariadb":
        assert reported is None
    else:
        assert reported is not None
        assert {k: r["note"] for k, r in reported.items()} == dict.fromkeys(due[:3])


def test_values_per_record_are_applied_and_left_to_the_re_read(
    source_db: ScratchDatabase,
) -> None:
    """An executemany returns no rows through these drivers: applied, not reported."""
    due = sorted(make_table(source_db.url, "t", indexed=True))
    connector = connector_for(source_db)
    try:
        change = Anonymise(constant={}, per_record={k: {"note": f"p{k[1]}"} for k in due[:2]})
        reported = connector.apply_reported(SELECTION, due[:2], change, ["note"])
        after = connector.reread(SELECTION, due[:2], ["note"])
    finally:
        connector.close()
    assert reported is None
    assert {k: r["note"] for k, r in after.items()} == {k: f"p{k[1]}" for k in due[:2]}


def test_a_run_re_reads_only_what_the_database_did_not_report(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete policies' batches are certified from the DELETE's own report, with no
    re-read; the alumni policy (a pseudonym per record) is re-read batch by batch. Every
    certificate is still verified and the ledger verifies."""
    reread_tables: list[str] = []
    original = SqlConnector.reread

    def counted(self: SqlConnector, selection: Selection, *args: Any, **kwargs: Any) -> Any:
        reread_tables.append(selection.table)
        return original(self, selection, *args, **kwargs)

    monkeypatch.setattr(SqlConnector, "reread", counted)
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        certs = list(ws.ledger.iter_certificates())
        report = api.verify_ledger(ws)
    assert outcome.exit_code == 0 and outcome.disposed == 9
    assert all(c["verified"] for c in certs) and report.ok
    assert "contracts" not in reread_tables and "interviewees" not in reread_tables
    assert reread_tables.count("alumni") == 2  # batch_size 2, three due records


def test_a_record_gone_though_not_reported_is_re_read_and_certified(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A due record someone else deleted just before the batch's DELETE is not in its
    report; the engine re-reads that one record, finds it gone and certifies it, as the
    re-read of the whole batch did before."""
    with Workspace.open(catalog, environ) as ws:
        connector = ws.connector("crm")
        assert isinstance(connector, SqlConnector)
        original, reread = connector.apply_reported, connector.reread
        reread_keys: list[Any] = []

        def deleted_first(selection: Selection, keys: Any, *args: Any) -> Any:
            if selection.table == "interviewees" and (1,) in keys:
                with connector.engine.begin() as conn:
                    conn.execute(sa.text("DELETE FROM interviewees WHERE id = 1"))
            return original(selection, keys, *args)

        def counted(selection: Selection, keys: Any, *args: Any, **kwargs: Any) -> Any:
            reread_keys.extend(keys)
            return reread(selection, keys, *args, **kwargs)

        monkeypatch.setattr(connector, "apply_reported", deleted_first)
        monkeypatch.setattr(connector, "reread", counted)
        outcome = api.run(ws, policies=["interviewees"], as_of=AS_OF)
        certs = list(ws.ledger.iter_certificates())
    assert outcome.exit_code == 0 and outcome.disposed == 3
    assert len(certs) == 3 and all(c["verified"] for c in certs)
    assert reread_keys == [(1,)]
