"""A ``timestamptz`` trigger falls due by the catalog's calendar, not the server's.

A record that ended at 00:30 on 23 November in Helsinki ended at 22:30 on 22 November in
UTC: with retention counted in Finnish days it must not be disposed of a day early because
the database server's sessions run in UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.catalog.model import SqlSource
from retention.connectors.base import Selection
from retention.connectors.sql import SqlConnector
from retention.testing import ScratchDatabase

HELSINKI_WINTER = timezone(timedelta(hours=2))


def test_a_timestamptz_trigger_falls_on_the_catalogs_calendar_day(
    source_db: ScratchDatabase,
) -> None:
    if source_db.backend != "postgresql":
        pytest.skip("time-zone-aware timestamps are PostgreSQL's timestamptz")
    engine = sa.create_engine(source_db.url)
    md = sa.MetaData()
    table = sa.Table(
        "members", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )  # fmt: skip
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"id": 1, "ended_at": datetime(2016, 11, 23, 0, 30, tzinfo=HELSINKI_WINTER)},
            {"id": 2, "ended_at": datetime(2016, 11, 22, 23, 30, tzinfo=HELSINKI_WINTER)},
        ])  # fmt: skip
    engine.dispose()

    def due_before(bound: date, zone: str) -> dict[int, date | None]:
        spec = SqlSource(id="src", kind="sql", url=source_db.url, timezone=zone)
        connector = SqlConnector(spec, source_db.url)
        try:
            selection = Selection(table="members", key=("id",), triggers=("ended_at",), bound=bound)
            return {r.key[0]: r.trigger for page in connector.candidates(selection, 10)
                    for r in page}  # fmt: skip
        finally:
            connector.close()

    # Due when the trigger day is before 23 November: only record 2, in Helsinki days.
    assert due_before(date(2016, 11, 23), "Europe/Helsinki") == {2: date(2016, 11, 22)}
    assert due_before(date(2016, 11, 24), "Europe/Helsinki") == {
        1: date(2016, 11, 23), 2: date(2016, 11, 22)
    }  # fmt: skip
    # Read in UTC days (a server's usual default), record 1 would fall due a day early.
    assert due_before(date(2016, 11, 23), "UTC") == {1: date(2016, 11, 22), 2: date(2016, 11, 22)}


def test_a_sql_connector_counts_days_in_the_catalogs_zone_unless_it_names_its_own(
    tmp_path: Path,
) -> None:
    from retention.catalog.loading import load_catalog

    for folder in ("policies", "connectors", "jobs"):
        (tmp_path / folder).mkdir()
    (tmp_path / "retention.yaml").write_text("timezone: Europe/Stockholm\n", encoding="utf-8")
    (tmp_path / "connectors" / "a.yaml").write_text(
        "id: a\nkind: sql\nurl: sqlite://\n", encoding="utf-8"
    )
    (tmp_path / "connectors" / "b.yaml").write_text(
        "id: b\nkind: sql\nurl: sqlite://\ntimezone: UTC\n", encoding="utf-8"
    )
    catalog = load_catalog(tmp_path, {})
    zones = {i: getattr(s, "timezone", None) for i, s in catalog.sources.items()}
    assert zones == {"a": "Europe/Stockholm", "b": "UTC"}
