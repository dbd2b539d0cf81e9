"""Many rows through one statement store exactly what SQLAlchemy's own executemany stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from retention.connectors.sql_many import executemany
from retention.state.database import certificates, metadata, plan_records, plans
from retention.testing import ScratchDatabase

Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def sample(md: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name, md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("day", sa.Date),
        sa.Column("moment", Timestamp),
        sa.Column("naive", sa.DateTime),
        sa.Column("big", sa.BigInteger),
        sa.Column("text", sa.Text),
        sa.Column("name", sa.String(50)),
        sa.Column("flag", sa.Boolean),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("ratio", sa.Float),
    )  # fmt: skip


def rows(n: int) -> list[dict[str, Any]]:
    t0 = datetime(2026, 11, 22, 0, 30, 12, 345678, tzinfo=UTC)
    return [
        {
            "id": i,
            "day": None if i % 5 == 0 else date(2019, 5, 31) + timedelta(days=i),
            "moment": None if i % 7 == 0 else t0 + timedelta(seconds=i, microseconds=i),
            "naive": datetime(2020, 1, 1, 12) + timedelta(minutes=i),
            "big": 2**40 + i,
            "text": '{"ä":"json – text"}' if i % 2 else None,
            "name": f"Sähkö Öljynen {i}",
            "flag": [True, False, None][i % 3],
            "amount": None if i % 4 == 0 else Decimal(i) / 4,
            "ratio": i / 3,
        }
        for i in range(1, n + 1)
    ]


def stored(conn: sa.Connection, table: sa.Table) -> list[tuple[Any, ...]]:
    """What each row holds, as SQLAlchemy reads it and, on SQLite, as the file stores it."""
    columns: list[sa.ColumnElement[Any]] = list(table.c)
    if conn.dialect.name == "sqlite":
        columns += [sa.func.typeof(c) for c in table.c] + [sa.cast(c, sa.Text) for c in table.c]
    return [tuple(r) for r in conn.execute(sa.select(*columns).order_by(table.c.id))]


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[bool]]:
    """For each executemany the driver runs: whether SQLAlchemy compiled its parameters."""
    seen: list[bool] = []

    def record(conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: bool):
        if many:
            seen.append(context.compiled is not None)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_insert_stores_what_sqlalchemy_stores(source_db: ScratchDatabase) -> None:
    md = sa.MetaData()
    ours, theirs = sample(md, "ours"), sample(md, "theirs")
    engine = source_db.engine()
    try:
        md.create_all(engine)
        with statements(engine) as compiled, engine.begin() as conn:
            executemany(conn, ours.insert(), rows(60))
            conn.execute(theirs.insert(), rows(60))
            assert stored(conn, ours) == stored(conn, theirs)
            assert len(stored(conn, ours)) == 60
        # SQLite takes the plain path; the others keep SQLAlchemy's own.
        assert compiled[0] is (source_db.backend != "sqlite")
    finally:
        engine.dispose()


def test_update_binds_constants_and_per_row_values(source_db: ScratchDatabase) -> None:
    """An UPDATE keyed by per-row parameters, with constants in SET and WHERE (as the SQL
    connector's anonymisation is), changes the rows SQLAlchemy's executemany changes."""
    md = sa.MetaData()
    ours, theirs = sample(md, "ours"), sample(md, "theirs")
    engine = source_db.engine()
    try:
        md.create_all(engine)
        with engine.begin() as conn:
            conn.execute(ours.insert(), rows(40))
            conn.execute(theirs.insert(), rows(40))
        params = [{"_k0": i, "_v_name": f"pseudonym {i}", "_v_day": date(2019, 1, 1)}
                  for i in range(1, 41, 2)]  # fmt: skip
        counts = []
        with statements(engine) as compiled, engine.begin() as conn:
            for table, run in ((ours, executemany), (theirs, None)):
                stmt = (
                    sa.update(table)
                    .where(table.c.id == sa.bindparam("_k0"))
                    .where(sa.or_(table.c.day < date(2019, 7, 1), table.c.day.is_(None)))
                    .where(table.c.moment > datetime(2026, 11, 22, tzinfo=UTC))
                    .values(text=None, flag=True, naive=datetime(2021, 1, 1, 8),
                            name=sa.bindparam("_v_name"), day=sa.bindparam("_v_day"))
                )  # fmt: skip
                if run is None:
                    counts.append(conn.execute(stmt, params).rowcount)
                else:
                    counts.append(run(conn, stmt, params))
            assert stored(conn, ours) == stored(conn, theirs)
        assert counts[0] == counts[1] and 0 < counts[0] < len(params)
        assert compiled[0] is (source_db.backend != "sqlite")
    finally:
        engine.dispose()


def test_python_side_defaults_are_left_to_sqlalchemy(source_db: ScratchDatabase) -> None:
    """A column default computed in Python is not in one fixed statement: SQLAlchemy's own
    executemany fills it in."""
    md = sa.MetaData()
    defaulted = sa.Table(
        "d", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("flag", sa.Boolean, nullable=False, default=False),
    )  # fmt: skip
    engine = source_db.engine()
    try:
        md.create_all(engine)
        with statements(engine) as compiled, engine.begin() as conn:
            executemany(conn, defaulted.insert(), [{"id": 1}, {"id": 2}])
            assert conn.execute(sa.select(defaulted).order_by(defaulted.c.id)).all() == [
                (1, False),
                (2, False),
            ]
        assert compiled == [True]
    finally:
        engine.dispose()


def test_state_tables_take_the_plain_path_on_sqlite(source_db: ScratchDatabase) -> None:
    """The ledger and plan records, the two bulk inserts of a run, are written without
    SQLAlchemy's per-row work on SQLite (a column default would silently undo that)."""
    if source_db.backend != "sqlite":
        return
    engine = source_db.engine()
    try:
        metadata.create_all(engine)
        t0 = datetime(2026, 11, 22, tzinfo=UTC)
        with statements(engine) as compiled, engine.begin() as conn:
            conn.execute(plans.insert().values(
                plan_id="P1", kind="run", created_at=t0, as_of=t0.date(), catalog="c",
                selection="{}",
            ))  # fmt: skip
            executemany(conn, certificates.insert(), [
                {"seq": i, "certificate_id": f"id-{i}", "run_id": "R1", "register": "r",
                 "policy": "p", "record_ref": f"{i:064x}", "executed_at": t0,
                 "hash": f"{i:064x}", "body": "{}"}
                for i in (1, 2)
            ])  # fmt: skip
            executemany(conn, plan_records.insert(), [
                {"plan_id": "P1", "register": "r", "policy": "p", "key": f"[{i}]",
                 "record_ref": f"{i:064x}", "decision": "expire", "trigger_date": t0.date(),
                 "expires_on": t0.date(), "hold_id": None, "reason": None, "secret": i == 1,
                 "fingerprint": None}
                for i in (1, 2)
            ])  # fmt: skip
            secrets = conn.scalars(sa.select(plan_records.c.secret).order_by(plan_records.c.id))
            assert secrets.all() == [True, False]
        assert compiled == [False, False]
    finally:
        engine.dispose()
