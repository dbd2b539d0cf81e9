"""Per-record anonymisation in the SQL connector, on every backend, under every kind of filter.

Values that differ per record (``pseudonym``, ``year``) go to the database as one
executemany; its WHERE clause still re-checks the policy's filters, including lists
(``match`` on several values, ``unless ... in``), which must not break the statement.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from retention.catalog.model import SqlSource
from retention.connectors.base import Anonymise, Condition, Selection
from retention.connectors.sql import SqlConnector
from retention.testing import ScratchDatabase

BOUND = date(2020, 1, 1)


def test_per_record_values_under_list_filters_change_only_what_is_still_selected(
    source_db: ScratchDatabase,
) -> None:
    md = sa.MetaData()
    table = sa.Table(
        "people", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(10)),
        sa.Column("status", sa.String(10)),
        sa.Column("person_id", sa.String(64)),
        sa.Column("ended_on", sa.Date),
    )  # fmt: skip
    engine = sa.create_engine(source_db.url)
    md.create_all(engine)
    rows = [
        {"id": i, "kind": kind, "status": status, "person_id": f"P{i}", "ended_on": ended}
        for i, kind, status, ended in [
            (1, "alumni", "open", date(2010, 5, 1)),
            (2, "staff", "open", date(2011, 5, 1)),
            (3, "alumni", "appeal", date(2012, 5, 1)),
            (4, "guest", "open", date(2013, 5, 1)),
            (5, "alumni", "open", date(2024, 5, 1)),
        ]
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    selection = Selection(
        table="people", key=("id",), triggers=("ended_on",), bound=BOUND,
        match={"kind": ("alumni", "staff")},
        unless=(Condition("status", "in", ("appeal", "court")),),
    )  # fmt: skip
    connector = SqlConnector(SqlSource(id="src", kind="sql", url=source_db.url), source_db.url)
    try:
        keys = [(1,), (2,), (3,), (4,), (5,)]  # 3 is kept, 4 not matched, 5 not due
        change = Anonymise(constant={}, per_record={k: {"person_id": f"X{k[0]}"} for k in keys})
        changed = connector.apply(selection, keys, change)
    finally:
        connector.close()
    with engine.connect() as conn:
        after = dict(conn.execute(sa.select(table.c.id, table.c.person_id)).all())
    engine.dispose()
    assert changed == 2
    assert after == {1: "X1", 2: "X2", 3: "P3", 4: "P4", 5: "P5"}


def test_an_empty_unless_list_keeps_nothing_under_per_record_values(
    source_db: ScratchDatabase,
) -> None:
    """``unless: {in: []}`` meets no row; it must not put an expanding parameter into the
    executemany either."""
    md = sa.MetaData()
    table = sa.Table(
        "people", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(10)),
        sa.Column("person_id", sa.String(64)),
    )  # fmt: skip
    engine = sa.create_engine(source_db.url)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": 1, "status": "open", "person_id": "P1"}])
    selection = Selection(table="people", key=("id",), unless=(Condition("status", "in", ()),))
    connector = SqlConnector(SqlSource(id="src", kind="sql", url=source_db.url), source_db.url)
    try:
        change = Anonymise(constant={}, per_record={(1,): {"person_id": "X1"}})
        changed = connector.apply(selection, [(1,)], change)
    finally:
        connector.close()
    with engine.connect() as conn:
        after = conn.scalar(sa.select(table.c.person_id))
    engine.dispose()
    assert changed == 1 and after == "X1"


def test_redact_leaves_an_empty_cell_empty_in_both_statement_forms(
    source_db: ScratchDatabase,
) -> None:
    """An anonymised record must not claim a note it never had: ``redact`` writes its marker
    only over a value, in the batch-wide UPDATE and in the per-record executemany alike."""
    md = sa.MetaData()
    table = sa.Table(
        "people", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("notes", sa.Text),
        sa.Column("person_id", sa.String(64)),
        sa.Column("ended_on", sa.Date),
    )  # fmt: skip
    engine = sa.create_engine(source_db.url)
    md.create_all(engine)
    rows = [
        {"id": i, "notes": note, "person_id": f"P{i}", "ended_on": date(2010, 5, 1)}
        for i, note in [(1, "moved abroad"), (2, None), (3, ""), (4, None)]
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    selection = Selection(table="people", key=("id",), triggers=("ended_on",), bound=BOUND)
    connector = SqlConnector(SqlSource(id="src", kind="sql", url=source_db.url), source_db.url)
    redact = {"notes": "[redacted]"}
    try:
        batch_wide = Anonymise(constant=redact, keep_null=frozenset({"notes"}))
        assert connector.apply(selection, [(1,), (2,)], batch_wide) == 2
        per_record = Anonymise(
            constant=redact,
            per_record={(3,): {"person_id": "X3"}, (4,): {"person_id": "X4"}},
            keep_null=frozenset({"notes"}),
        )
        connector.apply(selection, [(3,), (4,)], per_record)
    finally:
        connector.close()
    with engine.connect() as conn:
        after = {r.id: (r.notes, r.person_id) for r in conn.execute(sa.select(table))}
    engine.dispose()
    assert after == {
        1: ("[redacted]", "P1"),
        2: (None, "P2"),
        3: ("[redacted]", "X3"),
        4: (None, "X4"),
    }
