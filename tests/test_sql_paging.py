"""Candidate paging in the SQL connector, on every backend.

With an index on the trigger the connector pages by ``(trigger, key)`` so that a run reads
only the due part of the index; without one it pages by key. Both must yield every due
record exactly once, however many records share a trigger date across page boundaries.
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from retention.catalog.model import SqlSource
from retention.connectors.base import Selection
from retention.connectors.sql import SqlConnector
from retention.testing import ScratchDatabase

BOUND = date(2020, 1, 1)


def make_table(url: str, name: str, *, indexed: bool) -> set[tuple[str, int]]:
    """60 rows over a composite key, only four distinct trigger dates; returns the due keys."""
    md = sa.MetaData()
    table = sa.Table(
        name, md,
        sa.Column("site", sa.String(10), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("ended_on", sa.Date, index=indexed),
        sa.Column("note", sa.String(20)),
    )  # fmt: skip
    engine = sa.create_engine(url)
    md.create_all(engine)
    days = [BOUND - timedelta(days=400), BOUND - timedelta(days=1), BOUND, None]
    rows = [
        {"site": site, "n": n, "ended_on": days[(n * 7 + len(site)) % 4], "note": f"x{n}"}
        for site in ("A", "BB", "C")
        for n in range(20)
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    engine.dispose()
    return {
        (r["site"], r["n"]) for r in rows if r["ended_on"] is not None and r["ended_on"] < BOUND
    }


def read_all(connector: SqlConnector, name: str) -> list[tuple[object, ...]]:
    selection = Selection(
        table=name, key=("site", "n"), triggers=("ended_on",), bound=BOUND, columns=("note",)
    )
    return [
        (*record.key, record.trigger)
        for page in connector.candidates(selection, batch_size=7)
        for record in page
    ]


def test_every_due_record_once_whether_or_not_the_trigger_is_indexed(
    source_db: ScratchDatabase,
) -> None:
    due_indexed = make_table(source_db.url, "with_index", indexed=True)
    due_plain = make_table(source_db.url, "without_index", indexed=False)
    connector = SqlConnector(SqlSource(id="src", kind="sql", url=source_db.url), source_db.url)
    try:
        by_trigger = read_all(connector, "with_index")
        by_key = read_all(connector, "without_index")
    finally:
        connector.close()
    assert len(by_trigger) == len(set(by_trigger)) == len(due_indexed) == 30
    assert {(site, n) for site, n, _ in by_trigger} == due_indexed
    assert {(site, n) for site, n, _ in by_key} == due_plain == due_indexed
    # The indexed table was read in trigger order, the other in key order.
    assert [(t, s, n) for s, n, t in by_trigger] == sorted((t, s, n) for s, n, t in by_trigger)
    assert [(s, n) for s, n, _ in by_key] == sorted((s, n) for s, n, _ in by_key)
