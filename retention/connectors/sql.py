"""``kind: sql`` — tables in any database SQLAlchemy reaches, through SQLAlchemy Core.

Every identifier comes from reflection and is quoted by SQLAlchemy; every value is a bound
parameter. Candidates are read with the policy's filter and cutoff in the WHERE clause, in
keyset-ordered pages (``key > last ORDER BY key LIMIT n``), so memory holds one page and
the cost follows the due records rather than the table when the trigger is indexed; each
page is an index range that starts at its position (:func:`_after`), so a page costs the
same however late in the run it comes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from retention.catalog.model import SqlSource
from retention.connectors.base import (
    Anonymise,
    BatchSize,
    Capabilities,
    Change,
    Column,
    ColumnKind,
    Delete,
    Key,
    Record,
    RecordProblem,
    Selection,
    TableInfo,
    combine_triggers,
    page_size,
)
from retention.connectors.sql_many import executemany
from retention.connectors.sql_sets import one_of
from retention.errors import SourceUnavailable

_BIND_LIMITS = {"sqlite": 32_000, "postgresql": 30_000, "mysql": 30_000, "mariadb": 30_000}


class SqlConnector:
    """A relational source; one instance per connector id, sharing one connection pool."""

    def __init__(self, spec: SqlSource, url: str) -> None:
        self.id = spec.id
        self._schema = spec.schema_
        try:
            parsed = sa.engine.make_url(url)
            self.engine: Engine = sa.create_engine(parsed, pool_pre_ping=True)
        except (sa_exc.ArgumentError, ImportError) as exc:
            raise SourceUnavailable(f"connector {spec.id}: cannot use its url: {exc}") from exc
        database = parsed.database or ""
        # SQLite would silently create an empty file; a missing source is an error.
        is_file = database not in ("", ":memory:") and not database.startswith("file:")
        if parsed.get_backend_name() == "sqlite" and is_file and not Path(database).is_file():
            raise SourceUnavailable(f"connector {spec.id}: database file {database} does not exist")
        if self.engine.dialect.name == "postgresql" and spec.timezone:
            _read_days_in(self.engine, spec.timezone)
        self.capabilities = Capabilities(
            transactional=True,
            reread=True,
            max_bind_params=_BIND_LIMITS.get(self.engine.dialect.name, 2_000),
        )
        self._tables: dict[str, sa.Table] = {}
        self._leading: dict[str, frozenset[str]] = {}

    # -- description ---------------------------------------------------------------------

    def table(self, name: str) -> sa.Table:
        """The reflected table; LookupError when it does not exist."""
        if name not in self._tables:
            try:
                self._tables[name] = sa.Table(
                    name, sa.MetaData(), autoload_with=self.engine, schema=self._schema
                )
            except sa_exc.NoSuchTableError:
                raise LookupError(f"table {name!r} does not exist in connector {self.id}") from None
            except sa_exc.DBAPIError as exc:
                raise SourceUnavailable(
                    f"connector {self.id}: reading table {name!r} failed: {type(exc.orig).__name__}"
                ) from exc
        return self._tables[name]

    def _leading_index_columns(self, table: str) -> frozenset[str]:
        """Columns that lead an index of ``table`` (read once per table)."""
        if table not in self._leading:
            try:
                indexes = sa.inspect(self.engine).get_indexes(table, schema=self._schema)
            except sa_exc.DBAPIError:
                indexes = []  # no index information: page by key, which is always right
            self._leading[table] = frozenset(
                str(index["column_names"][0])
                for index in indexes
                if index["column_names"] and index["column_names"][0]  # not an expression
            )
        return self._leading[table]

    def ping(self) -> None:
        with self._connect():
            pass

    @contextmanager
    def _failures(self, doing: str, *, detail: bool = True) -> Iterator[None]:
        """Turn driver errors into SourceUnavailable without echoing row data.

        Connection-level errors keep their first line (host, port, reason) where the
        statement carried no record values; others only their class, since a constraint
        message can quote a column value.
        """
        try:
            yield
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            if not detail:
                raise SourceUnavailable(
                    f"connector {self.id}: {doing} failed: {type(exc.orig).__name__}"
                ) from exc
            reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
            raise SourceUnavailable(f"connector {self.id}: {doing} failed: {reason}") from exc
        except sa_exc.DBAPIError as exc:
            raise SourceUnavailable(
                f"connector {self.id}: {doing} failed: {type(exc.orig).__name__}"
            ) from exc

    def describe(self, table: str) -> TableInfo:
        t = self.table(table)
        inspector = sa.inspect(self.engine)
        unique: list[frozenset[str]] = []
        for constraint in inspector.get_unique_constraints(table, schema=self._schema):
            unique.append(frozenset(constraint["column_names"]))
        for index in inspector.get_indexes(table, schema=self._schema):
            if index.get("unique"):
                unique.append(frozenset(c for c in index["column_names"] if c))
        columns = {c.name: _column(c) for c in t.columns}
        return TableInfo(
            name=table,
            columns=columns,
            primary_key=tuple(c.name for c in t.primary_key.columns),
            unique=tuple(unique),
        )

    def duplicate_keys(self, table: str, key: Sequence[str]) -> int:
        t = self.table(table)
        cols = [t.c[name] for name in key]
        dupes = sa.select(*cols).group_by(*cols).having(sa.func.count() > 1).subquery()
        with self._failures("checking the key"), self._connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(dupes)) or 0)

    # -- reading -------------------------------------------------------------------------

    def count(self, selection: Selection, *, candidates_only: bool) -> int:
        t = self.table(selection.table)
        where = self._where(t, selection, candidates_only=candidates_only)
        with self._failures("counting"), self._connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(t).where(where)) or 0)

    def candidates(self, selection: Selection, batch_size: BatchSize) -> Iterator[list[Record]]:
        t = self.table(selection.table)
        key_cols = [t.c[name] for name in selection.key]
        extra = [t.c[name] for name in selection.columns if name not in selection.key]
        triggers = [t.c[name] for name in selection.triggers]
        wanted = [*key_cols, *extra, *(c for c in triggers if c.name not in selection.columns)]
        # A NULL key cannot be paged past or named: such rows are never candidates.
        base = sa.and_(
            self._where(t, selection, candidates_only=True), *(c.is_not(None) for c in key_cols)
        )
        most = max(1, self.capabilities.max_bind_params // (len(key_cols) + 1))
        # Page in the order of an index on the trigger when there is one: the cutoff then
        # reads only the due part of the index, and the cost follows the due records, not
        # the table. Otherwise page by key.
        order = key_cols
        if (
            len(triggers) == 1
            and selection.bound is not None
            and triggers[0].name in self._leading_index_columns(selection.table)
        ):
            order = [triggers[0], *key_cols]
        # Rows are read as plain tuples and each field taken by its position: a mapping per
        # row and a lookup by name per field cost more than the database's read of the page.
        position = {c.name: i for i, c in reversed(list(enumerate(wanted)))}
        key_at = [position[c.name] for c in key_cols]
        trigger_at = [position[c.name] for c in triggers]
        value_at = [(name, position[name]) for name in selection.columns]
        order_at = [position[c.name] for c in order]
        # The database's verdict on each `unless` condition, read with the row: Python's ==
        # knows neither the column's collation nor its padding or type conversions.
        flags = [sa.case((test, 1), else_=0) for test in self._unless_tests(t, selection)]
        kept_at = list(range(len(wanted), len(wanted) + len(flags)))
        rule = selection.trigger_rule
        last: tuple[Any, ...] | None = None
        while True:
            size = min(page_size(batch_size), most)
            where = base if last is None else sa.and_(base, _after(order, last))
            query = sa.select(*wanted, *flags).where(where).order_by(*order).limit(size)
            with self._failures("reading candidates"), self._connect() as conn:
                try:
                    rows = conn.execute(query).all()
                except ValueError as exc:  # a stored value the driver cannot read as its type
                    raise SourceUnavailable(
                        f"connector {self.id}: a value in {selection.table!r} cannot be read as "
                        f"its column's type ({type(exc).__name__}); fix the data, then run again"
                    ) from None
            if not rows:
                return
            try:
                page = _records(rows, key_at, trigger_at, value_at, rule, kept_at)
            except ValueError:  # a trigger stored as text that is not a date
                raise SourceUnavailable(
                    f"connector {self.id}: a trigger value in {selection.table!r} is not a "
                    "date; fix the data, then run again"
                ) from None
            last = tuple(rows[-1][i] for i in order_at)
            yield page
            if len(rows) < size:
                return

    def reread(
        self,
        selection: Selection,
        keys: Sequence[Key],
        columns: Sequence[str],
        *,
        selected_only: bool = False,
    ) -> dict[Key, Mapping[str, Any]]:
        if not keys:
            return {}
        t = self.table(selection.table)
        key_cols = [t.c[name] for name in selection.key]
        cols = [t.c[name] for name in columns if name not in selection.key]
        query = sa.select(*key_cols, *cols).where(self._in(key_cols, keys))
        if selected_only:
            query = query.where(
                self._where(t, selection, candidates_only=True), sa.not_(self._kept(t, selection))
            )
        with self._failures("re-reading", detail=False), self._connect() as conn:
            rows = conn.execute(query).all()
        names = [c.name for c in (*key_cols, *cols)]
        width = len(key_cols)
        return {row[:width]: dict(zip(names, row, strict=True)) for row in rows}

    def unless_met(self, selection: Selection, keys: Sequence[Key]) -> dict[Key, tuple[bool, ...]]:
        if not keys:
            return {}
        t = self.table(selection.table)
        key_cols = [t.c[name] for name in selection.key]
        flags = [sa.case((test, 1), else_=0) for test in self._unless_tests(t, selection)]
        query = sa.select(*key_cols, *flags).where(self._in(key_cols, keys))
        with self._failures("reading exceptions", detail=False), self._connect() as conn:
            rows = conn.execute(query).all()
        width = len(key_cols)
        return {tuple(row[:width]): tuple(bool(v) for v in row[width:]) for row in rows}

    def equal(self, table: str, column: str, first: Any, second: Any) -> bool:
        """Asked of the database: both values, as the column's type, go into one ``UNION``
        column together with the column itself, so the column's collation (case, accents,
        trailing spaces) and type conversions decide, and ``UNION`` keeps one of two equal
        values. The column contributes no row."""
        t = self.table(table)
        col = t.c[column]

        def typed(value: Any) -> sa.ColumnElement[Any]:
            bound = sa.literal(value, col.type)
            return bound if _kind(col.type) == "string" else sa.cast(bound, col.type)

        both = sa.union(
            sa.select(col).where(sa.false()), sa.select(typed(first)), sa.select(typed(second))
        ).subquery()
        with self._failures("comparing match values"), self._connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(both)) or 0) < 2

    # -- writing -------------------------------------------------------------------------

    def apply(self, selection: Selection, keys: Sequence[Key], change: Change) -> int:
        if not keys:
            return 0
        t = self.table(selection.table)
        key_cols = [t.c[name] for name in selection.key]
        still_selected = self._still_selected(t, selection, change)
        with self._failures("applying the change", detail=False), self.engine.begin() as conn:
            if isinstance(change, Delete):
                stmt = sa.delete(t).where(self._in(key_cols, keys), still_selected)
                return int(conn.execute(stmt).rowcount)
            return self._anonymise(conn, t, key_cols, still_selected, keys, change)

    def apply_reported(
        self, selection: Selection, keys: Sequence[Key], change: Change, columns: Sequence[str]
    ) -> dict[Key, Mapping[str, Any]] | None:
        """``DELETE … RETURNING`` / ``UPDATE … RETURNING`` where the dialect has them (its
        ``delete_returning`` / ``update_returning``: SQLite 3.35+, PostgreSQL, MariaDB's
        DELETE): the database names the rows its one statement changed. An anonymising
        change with values per record is an executemany, which no driver here returns rows
        from, and MariaDB has no ``UPDATE … RETURNING``: those are applied by :meth:`apply`
        and left to the re-read (None)."""
        t = self.table(selection.table)  # connects first: a dialect learns its server then
        dialect = self.engine.dialect
        if isinstance(change, Delete):
            reports = dialect.delete_returning
        else:
            reports = dialect.update_returning and not change.per_record
        if not reports:
            self.apply(selection, keys, change)
            return None
        if not keys:
            return {}
        key_cols = [t.c[name] for name in selection.key]
        cols = [t.c[name] for name in columns if name not in selection.key]
        where = sa.and_(self._in(key_cols, keys), self._still_selected(t, selection, change))
        stmt: sa.Delete | sa.Update
        if isinstance(change, Delete):
            stmt = sa.delete(t).where(where)
        else:
            stmt = sa.update(t).where(where).values(self._constant(t, change))
        with self._failures("applying the change", detail=False), self.engine.begin() as conn:
            rows = conn.execute(stmt.returning(*key_cols, *cols)).all()
        names = [c.name for c in (*key_cols, *cols)]
        width = len(key_cols)
        return {tuple(row[:width]): dict(zip(names, row, strict=True)) for row in rows}

    def _still_selected(
        self, t: sa.Table, selection: Selection, change: Change
    ) -> sa.ColumnElement[bool]:
        """The re-check in a change's WHERE clause: still due, still matching, not kept."""
        # An executemany (values per record) cannot expand a list parameter: lists are then
        # written as one bound parameter per value.
        fixed = isinstance(change, Anonymise) and bool(change.per_record)
        return sa.and_(
            self._where(t, selection, candidates_only=True, fixed_lists=fixed),
            sa.not_(self._kept(t, selection, fixed_lists=fixed)),
        )

    def _anonymise(
        self,
        conn: sa.Connection,
        t: sa.Table,
        key_cols: list[sa.Column[Any]],
        still_selected: sa.ColumnElement[bool],
        keys: Sequence[Key],
        change: Anonymise,
    ) -> int:
        constant = self._constant(t, change)
        if not change.per_record:
            stmt = sa.update(t).where(self._in(key_cols, keys), still_selected).values(constant)
            return int(conn.execute(stmt).rowcount)
        # Values differ per record: one executemany, keyed by bound parameters whose names
        # cannot collide with column names.
        columns = sorted({c for values in change.per_record.values() for c in values})
        stmt = (
            sa.update(t)
            .where(*(col == sa.bindparam(f"_k{i}") for i, col in enumerate(key_cols)))
            .where(still_selected)
            .values({**constant, **{c: sa.bindparam(f"_v_{c}") for c in columns}})
        )
        params = [
            {
                **{f"_k{i}": value for i, value in enumerate(key)},
                **{f"_v_{c}": change.per_record[key].get(c) for c in columns},
            }
            for key in keys
            if key in change.per_record
        ]
        return executemany(conn, stmt, params)

    @staticmethod
    def _constant(t: sa.Table, change: Anonymise) -> dict[str, Any]:
        """The values every record of the batch gets; NULL stays NULL where asked."""
        return {
            name: sa.case((t.c[name].is_(None), sa.null()), else_=sa.literal(value, t.c[name].type))
            if name in change.keep_null
            else value
            for name, value in change.constant.items()
        }

    def files(self, selection: Selection, keys: Sequence[Key]) -> dict[Key, list[Path]]:
        return {}

    def parse_key(self, table: str, columns: Sequence[str], text: Sequence[str]) -> Key:
        t = self.table(table)
        return tuple(_parse(t.c[name], value) for name, value in zip(columns, text, strict=True))

    def problems(self) -> list[RecordProblem]:
        """A row is never refused for what it is: a database has no links or odd names."""
        return []

    def close(self) -> None:
        self.engine.dispose()

    # -- helpers -------------------------------------------------------------------------

    def _connect(self) -> sa.Connection:
        try:
            return self.engine.connect()
        except sa_exc.DBAPIError as exc:
            raise SourceUnavailable(f"connector {self.id}: cannot connect: {exc.orig}") from exc

    def _where(
        self, t: sa.Table, selection: Selection, *, candidates_only: bool, fixed_lists: bool = False
    ) -> sa.ColumnElement[bool]:
        clauses: list[sa.ColumnElement[bool]] = []
        for name, value in selection.match.items():
            column = t.c[name]
            clauses.append(
                _listed(column, value, fixed_lists) if isinstance(value, tuple) else column == value
            )
        if selection.subject is not None:
            column_name, value = selection.subject
            clauses.append(t.c[column_name] == value)
        if candidates_only and selection.triggers and selection.bound is not None:
            due = [_before(t.c[name], selection.bound) for name in selection.triggers]
            either = sa.and_ if selection.trigger_rule == "latest" else sa.or_
            clauses.append(either(*due))
        return sa.and_(sa.true(), *clauses)

    def _in(self, key_cols: list[sa.Column[Any]], keys: Sequence[Key]) -> sa.ColumnElement[bool]:
        return _in(key_cols, keys, self.engine.dialect.name)

    def _kept(
        self, t: sa.Table, selection: Selection, *, fixed_lists: bool = False
    ) -> sa.ColumnElement[bool]:
        """Rows meeting any ``unless`` condition; NULL never meets a condition."""
        return sa.or_(sa.false(), *self._unless_tests(t, selection, fixed_lists=fixed_lists))

    def _unless_tests(
        self, t: sa.Table, selection: Selection, *, fixed_lists: bool = False
    ) -> list[sa.ColumnElement[bool]]:
        """One test per ``unless`` condition, in order."""
        tests: list[sa.ColumnElement[bool]] = []
        for condition in selection.unless:
            column = t.c[condition.column]
            if condition.op == "eq":
                test = column == condition.value
            elif condition.op == "in":
                test = _listed(column, condition.value, fixed_lists)
            elif _kind(column.type) == "string":
                test = column != ""
            else:
                test = sa.true()
            tests.append(sa.and_(column.is_not(None), test))
        return tests


def _read_days_in(engine: Engine, zone: str) -> None:
    """Every PostgreSQL session of ``engine`` in ``zone``: a ``timestamptz`` trigger then
    comes back, and a cutoff's midnight is compared, in that zone's calendar, so a record
    falls due on the day the catalog counts in, not on the server's (often UTC) day."""

    @sa.event.listens_for(engine, "connect")
    def _set_zone(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
        finally:
            cursor.close()
        dbapi_connection.commit()  # a setting made in a transaction rolled back would be lost


def _listed(column: sa.Column[Any], values: Sequence[Any], fixed: bool) -> sa.ColumnElement[bool]:
    """``column IN values`` for a policy's short lists (``match``, ``unless``): one expanding
    parameter, or (``fixed``, inside an executemany) a parameter per value; an empty list
    holds for no row. Batches of keys go through :func:`retention.connectors.sql_sets.one_of`."""
    if not values:
        return sa.false()
    if fixed:
        return column.in_([sa.literal(v, column.type) for v in values])
    return column.in_(list(values))


def _records(
    rows: Sequence[Sequence[Any]],
    key_at: Sequence[int],
    trigger_at: Sequence[int],
    value_at: Sequence[tuple[str, int]],
    rule: str,
    kept_at: Sequence[int] = (),
) -> list[Record]:
    """A page of rows as records; one trigger column (the usual case) skips the combining."""
    if kept_at:
        return [
            Record(
                tuple(row[i] for i in key_at),
                combine_triggers([_as_date(row[i]) for i in trigger_at], rule),
                {name: row[i] for name, i in value_at},
                tuple(bool(row[i]) for i in kept_at),
            )
            for row in rows
        ]
    if len(trigger_at) == 1:
        (t,) = trigger_at
        if len(key_at) == 1:
            (k,) = key_at
            return [
                Record((row[k],), _as_date(row[t]), {name: row[i] for name, i in value_at})
                for row in rows
            ]
        return [
            Record(
                tuple(row[i] for i in key_at),
                _as_date(row[t]),
                {name: row[i] for name, i in value_at},
            )
            for row in rows
        ]
    return [
        Record(
            tuple(row[i] for i in key_at),
            combine_triggers([_as_date(row[i]) for i in trigger_at], rule),
            {name: row[i] for name, i in value_at},
        )
        for row in rows
    ]


def _before(column: sa.Column[Any], bound: date) -> sa.ColumnElement[bool]:
    """``column`` holds a date before ``bound`` (a DATETIME: before its midnight)."""
    limit: date | datetime = bound
    if _kind(column.type) == "datetime":
        limit = datetime.combine(bound, time())
    return sa.and_(column.is_not(None), column < limit)


def _after(key_cols: list[sa.Column[Any]], last: Sequence[Any]) -> sa.ColumnElement[bool]:
    """Keyset condition ``(k1, k2, ...) > last``, spelt out as terms every database compares
    alike, with ``k1 >= last[0]`` AND-ed in front.

    The OR of the spelt-out terms is a filter to PostgreSQL's planner (and to SQLite's):
    the index range would start at the first due record, and every page would read past
    all those before it — a run quadratic in its due records. The redundant ``>=`` on the
    leading column is a plain range condition that each database puts into the index
    access (PostgreSQL's Index Cond, SQLite's SEARCH, MariaDB's ``range``), so every page
    starts where the previous one ended and reads only its own rows (plus those sharing
    the last value of the leading column)."""
    terms = []
    for i, col in enumerate(key_cols):
        equal = [key_cols[j] == last[j] for j in range(i)]
        terms.append(sa.and_(*equal, col > last[i]))
    if len(key_cols) == 1:
        return terms[0]
    return sa.and_(key_cols[0] >= last[0], sa.or_(*terms))


def _in(
    key_cols: list[sa.Column[Any]], keys: Sequence[Key], dialect: str
) -> sa.ColumnElement[bool]:
    if len(key_cols) == 1:
        return one_of(key_cols[0], [k[0] for k in keys], dialect)
    return sa.tuple_(*key_cols).in_([tuple(k) for k in keys])


def _kind(sql_type: sa.types.TypeEngine[Any]) -> ColumnKind:
    if isinstance(sql_type, sa.DateTime):
        return "datetime"
    if isinstance(sql_type, sa.Date):
        return "date"
    if isinstance(sql_type, sa.Boolean):
        return "boolean"
    if isinstance(sql_type, sa.Integer):
        return "integer"
    if isinstance(sql_type, sa.Numeric | sa.Float):
        return "number"
    if isinstance(sql_type, sa.String):
        return "string"
    return "other"


def _column(column: sa.Column[Any]) -> Column:
    length = getattr(column.type, "length", None)
    return Column(
        name=column.name,
        kind=_kind(column.type),
        nullable=bool(column.nullable),
        length=length if isinstance(length, int) else None,
        sql_type=str(column.type),
    )


def _as_date(value: Any) -> date | None:
    if value is None or type(value) is date:
        return value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _parse(column: sa.Column[Any], text: str) -> Any:
    """A key value back from its text form, in the column's own Python type.

    A type it cannot restore exactly raises ValueError: a wrongly typed key could match
    nothing, and "nothing matched" must never be read as "deleted".
    """
    kind = _kind(column.type)
    if kind == "integer":
        return int(text)
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "datetime":
        return datetime.fromisoformat(text)
    if kind == "number":
        return Decimal(text)
    if kind == "boolean":
        return text == "True"
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = None
    if python_type is str:
        return text
    if python_type is uuid.UUID:
        return uuid.UUID(text)
    if python_type is bytes:
        return bytes.fromhex(text)
    raise ValueError(f"cannot restore a key of column {column.name!r} ({column.type})")
