"""A candidate page costs the same however late in the run it comes, on every backend.

Each keyset page must be an index range that starts at its position: a page whose keyset
condition is only a filter reads every due record before it, and a run becomes quadratic
in its due records (on PostgreSQL, 300k due records took 78-261x the set-based statement).
The statements the connector really sends are captured and put to each database's own
planner and statistics: EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE) on PostgreSQL and
ANALYZE on MariaDB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from retention.catalog.model import SqlSource
from retention.connectors.base import Selection
from retention.connectors.sql import SqlConnector
from retention.testing import ScratchDatabase

BOUND = date(2020, 1, 1)
ROWS, PAGE = 12_000, 200


def make_table(engine: sa.Engine, name: str, *, composite: bool) -> int:
    """``ROWS`` rows, half of them due, an index on the trigger only (as most registers
    have); a trigger date is shared by about six records, so pages end inside a date."""
    md = sa.MetaData()
    keys = [sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)]
    if composite:
        keys.insert(0, sa.Column("site", sa.String(10), primary_key=True))
    table = sa.Table(
        name, md, *keys,
        sa.Column("ended_on", sa.Date, index=True),
        sa.Column("note", sa.String(40)),
    )  # fmt: skip
    md.create_all(engine)
    start = BOUND - timedelta(days=ROWS // 12)
    rows = [
        {
            **({"site": "ABC"[i % 3]} if composite else {}),
            "id": i,
            "ended_on": start + timedelta(days=(i * 7919) % (ROWS // 6)),
            "note": f"note {i}",
        }
        for i in range(ROWS)
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"ANALYZE {name}"))
        elif engine.dialect.name != "sqlite":
            conn.execute(sa.text(f"ANALYZE TABLE {name}"))
    return sum(1 for r in rows if r["ended_on"] < BOUND)


def pages_sent(connector: SqlConnector, name: str, key: tuple[str, ...]) -> list[tuple[str, Any]]:
    """Every candidate page's statement and parameters, as the connector sent them."""
    sent: list[tuple[str, Any]] = []
    connector.table(name)  # reflected first: only the pages are captured

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "ORDER BY" in statement and "LIMIT" in statement:
            sent.append((statement, params))

    sa.event.listen(connector.engine, "before_cursor_execute", capture)
    selection = Selection(
        table=name, key=key, triggers=("ended_on",), bound=BOUND, columns=("note",)
    )
    records = sum(len(page) for page in connector.candidates(selection, PAGE))
    sa.event.remove(connector.engine, "before_cursor_execute", capture)
    assert records and len(sent) > 20
    return sent


def sqlite_plan(engine: sa.Engine, statement: str, params: Any) -> str:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
    return " | ".join(str(row[-1]) for row in rows)


def nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object in a JSON plan, depth first."""
    if isinstance(tree, dict):
        yield tree
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            yield from nodes(item)


def postgresql_reads(engine: sa.Engine, statement: str, params: Any) -> tuple[int, str]:
    """Rows the page's scan of the table looked at (returned, plus removed by its filter),
    and its plan's index conditions, from PostgreSQL's own EXPLAIN ANALYZE."""
    with engine.connect() as conn:
        (plan,) = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params
        ).scalar_one()
    scans = [n for n in nodes(plan["Plan"]) if "Relation Name" in n]
    examined = sum(
        n["Actual Rows"] + n.get("Rows Removed by Filter", 0)
        + n.get("Rows Removed by Index Recheck", 0) for n in scans
    )  # fmt: skip
    how = "; ".join(
        f"{n['Node Type']}: {n.get('Index Cond', '')}" for n in nodes(plan["Plan"])
        if "Node Type" in n and "Scan" in n["Node Type"]
    )  # fmt: skip
    return examined, how


def mariadb_reads(engine: sa.Engine, statement: str, params: Any) -> tuple[float, str]:
    """Rows the page read from the table and its access type, from MariaDB's ANALYZE."""
    with engine.connect() as conn:
        text = conn.exec_driver_sql("ANALYZE FORMAT=JSON " + statement, params).scalar_one()
    (table,) = (n["table"] for n in nodes(json.loads(text)) if "table" in n)
    return float(table["r_rows"]), f"{table['access_type']} on {table.get('key')}"


@pytest.mark.parametrize("composite", [False, True], ids=["key", "composite-key"])
def test_a_late_page_reads_no_more_than_an_early_one(
    source_db: ScratchDatabase, composite: bool
) -> None:
    """The bound of the previous page is in the index access, not a filter behind it: the
    last page reads as few rows as the second, and no more than a page and the records
    sharing one trigger date."""
    engine = source_db.engine()
    key = ("site", "id") if composite else ("id",)
    due = make_table(engine, "paged", composite=composite)
    assert due > 20 * PAGE
    url = source_db.url
    connector = SqlConnector(SqlSource(id="src", kind="sql", url=url), url)
    try:
        sent = pages_sent(connector, "paged", key)
        second, last = sent[1], sent[-2]  # the last full page, not the empty one after it
        if source_db.backend == "sqlite":
            for statement, params in (second, last):
                plan = sqlite_plan(connector.engine, statement, params)
                # One range SEARCH bounded on both sides, from the previous page to the
                # cutoff (not a MULTI-INDEX OR whose parts start at the first due record).
                assert plan.startswith("SEARCH paged USING INDEX"), plan
                assert "MULTI-INDEX OR" not in plan, plan
                assert "ended_on>?" in plan and "ended_on<?" in plan, plan
        elif source_db.backend == "postgresql":
            early, how_early = postgresql_reads(connector.engine, *second)
            late, how_late = postgresql_reads(connector.engine, *last)
            assert ">=" in how_late and "ended_on" in how_late, how_late
            assert late <= 2 * PAGE and early <= 2 * PAGE, (early, late, how_early, how_late)
        else:
            early, how_early = mariadb_reads(connector.engine, *second)
            late, how_late = mariadb_reads(connector.engine, *last)
            assert how_late.startswith("range"), how_late
            assert late <= 2 * PAGE and early <= 2 * PAGE, (early, late, how_early, how_late)
    finally:
        connector.close()
        engine.dispose()
