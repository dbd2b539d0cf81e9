"""Retention scenarios as data (STYLE 12): one YAML file per behaviour in ``tests/scenarios/``.

A scenario file holds:

``description``
    One sentence: the behaviour the scenario pins.
``as_of``
    The day the records are decided on.
``table``
    ``name``, ``columns`` (column name -> ``integer``, ``string``, ``date`` or ``datetime``)
    and ``key`` (the table's primary-key columns).
``rows``
    A list of mappings, column -> value; columns left out are NULL.
``policy``
    One policy exactly as in a catalog ``policies/`` file, without ``connector`` and
    ``table``, which are filled in here. Its register is ``scenarios``.
``holds`` (optional)
    Keyword arguments of one hold each, such as ``{register: scenarios, policy: p}``,
    ``{subject: "010190-900A"}`` or ``{policy: p, record: ["1"]}``.
``expire``, ``held`` (optional), ``kept`` (optional)
    The keys the plan must decide ``expire``, ``held``, and ``retain`` with a reason (an
    ``unless`` exception), in report form: a string for a single-column key, a list of
    strings for a composite one. Order does not matter.
``counts``
    The plan's counts: ``scanned``, ``expire``, ``retain``, ``held``, ``done``.
``after_run`` (optional)
    What :func:`retention.api.run` on the same day must leave behind: ``gone`` (deleted
    keys), ``anonymised`` (entries ``{key: K}``, optionally with ``values``: column -> the
    exact value expected), ``untouched`` (keys whose row must be unchanged); together the
    three name every row of the table. Optionally ``counts`` of the run and ``again``, the
    counts of a second run on the same day, which must change nothing.

Each scenario runs on a fresh catalog on SQLite built in the test's temporary directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from freezegun import freeze_time

from retention import api
from retention.workspace import Workspace
from tests.conftest import SECRET

SCENARIOS = Path(__file__).parent / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))

REGISTER = {
    "id": "scenarios",
    "name": "Scenario register",
    "controller": "Test controller",
    "source": "tests/scenarios",
}
CONNECTOR = "source"
REDACTED = "[redacted]"  # written out here, so a changed marker text fails a scenario
HEX64 = re.compile(r"^[0-9a-f]{64}$")

TYPES: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    "integer": sa.Integer,
    "string": lambda: sa.String(255),
    "date": sa.Date,
    "datetime": sa.DateTime,
}
REQUIRED = {"description", "as_of", "table", "rows", "policy", "expire", "counts"}
TOP_KEYS = REQUIRED | {"holds", "held", "kept", "after_run"}
AFTER_KEYS = {"gone", "anonymised", "untouched", "counts", "again"}
COUNT_KEYS = {"scanned", "expire", "retain", "held", "done"}

Key = str | tuple[str, ...]


# -- reading a scenario ----------------------------------------------------------------------


def load_scenario(path: Path) -> dict[str, Any]:
    """Read one scenario file and check its shape, so a typo fails loudly, not vacuously."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    name = path.name
    assert isinstance(doc, dict), f"{name}: expected a mapping"
    assert not set(doc) - TOP_KEYS, f"{name}: unknown keys {sorted(set(doc) - TOP_KEYS)}"
    assert not REQUIRED - set(doc), f"{name}: missing keys {sorted(REQUIRED - set(doc))}"
    assert isinstance(doc["description"], str) and doc["description"].strip(), name
    assert type(doc["as_of"]) is date, f"{name}: as_of must be a date"
    table = doc["table"]
    assert set(table) == {"name", "columns", "key"}, f"{name}: table needs name, columns, key"
    unknown = {t for t in table["columns"].values() if t not in TYPES}
    assert not unknown, f"{name}: unknown column types {unknown}; use one of {sorted(TYPES)}"
    assert set(table["key"]) <= set(table["columns"]), f"{name}: table key is not a column"
    policy = doc["policy"]
    assert isinstance(policy, dict), f"{name}: policy must be a mapping"
    assert not {"connector", "table"} & set(policy), f"{name}: the test fills in connector/table"
    for field in ("expire", "held", "kept"):
        for key in doc.get(field) or []:
            assert _is_report_key(key), f"{name}: {field}: {key!r} is not a key in report form"
    assert set(doc["counts"]) == COUNT_KEYS, f"{name}: counts needs exactly {sorted(COUNT_KEYS)}"
    after = doc.get("after_run")
    if after is not None:
        assert not set(after) - AFTER_KEYS, f"{name}: after_run: unknown {set(after) - AFTER_KEYS}"
        keys = [*after.get("gone", []), *after.get("untouched", [])]
        keys += [entry["key"] for entry in after.get("anonymised", [])]
        for key in keys:
            assert _is_report_key(key), f"{name}: after_run: {key!r} is not a key in report form"
    return doc


def _is_report_key(key: Any) -> bool:
    if isinstance(key, str):
        return True
    return isinstance(key, list) and len(key) > 1 and all(isinstance(k, str) for k in key)


def hashable(key: Any) -> Key:
    """A key in report form (string or list of strings) as a set member."""
    return key if isinstance(key, str) else tuple(key)


def key_text(value: Any) -> str:
    """How the report writes one key value: ISO dates, everything else as ``str``."""
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def row_key(row: Mapping[str, Any], columns: Sequence[str]) -> Key:
    texts = tuple(key_text(row[c]) for c in columns)
    return texts[0] if len(texts) == 1 else texts


def typed(kind: str, value: Any, where: str) -> Any:
    """A scenario value as the Python value SQLAlchemy stores for a column of ``kind``."""
    if value is None:
        return None
    if kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: not an integer"
        return value
    if kind == "string":
        assert isinstance(value, str), f"{where}: {value!r} is not a string (quote it)"
        return value
    if kind == "date":
        if isinstance(value, str):
            return date.fromisoformat(value)
        assert type(value) is date, f"{where}: {value!r} is not a date"
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    assert isinstance(value, datetime), f"{where}: {value!r} is not a datetime"
    return value


# -- building the catalog ----------------------------------------------------------------------


def build_catalog(root: Path, scenario: Mapping[str, Any]) -> sa.Table:
    """A one-table SQLite source, one connector, one register with the scenario's policy."""
    spec = scenario["table"]
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    table = sa.Table(
        spec["name"],
        sa.MetaData(),
        *(
            sa.Column(
                column,
                TYPES[kind](),
                primary_key=column in spec["key"],
                autoincrement=False,
                nullable=column not in spec["key"],
            )
            for column, kind in spec["columns"].items()
        ),
    )
    rows = []
    for index, row in enumerate(scenario["rows"]):
        unknown = set(row) - set(spec["columns"])
        assert not unknown, f"rows[{index}]: unknown columns {sorted(unknown)}"
        rows.append(
            {
                column: typed(kind, row.get(column), f"rows[{index}].{column}")
                for column, kind in spec["columns"].items()
            }
        )
    engine = sa.create_engine(f"sqlite:///{root / 'source.db'}")
    table.metadata.create_all(engine)
    if rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
    engine.dispose()

    policy = {**scenario["policy"], "connector": CONNECTOR, "table": spec["name"]}
    (root / "policies" / "scenarios.yaml").write_text(
        yaml.safe_dump(
            {"register": REGISTER, "policies": [policy]}, sort_keys=False, allow_unicode=True
        ),
        encoding="utf-8",
    )
    (root / "connectors" / f"{CONNECTOR}.yaml").write_text(
        f"id: {CONNECTOR}\nkind: sql\nurl: sqlite:///source.db\n", encoding="utf-8"
    )
    (root / "retention.yaml").write_text(
        "state: sqlite:///state.db\nsigning_key: keys/signing.pem\ntimezone: Europe/Helsinki\n"
        "batch_size: 2\n",  # several pages even for a handful of rows
        encoding="utf-8",
    )
    api.init(root, {})
    return table


def table_rows(root: Path, table: sa.Table, key: Sequence[str]) -> dict[Key, dict[str, Any]]:
    """Every row of the scenario's table, typed by SQLAlchemy, by key in report form."""
    engine = sa.create_engine(f"sqlite:///{root / 'source.db'}")
    try:
        with engine.connect() as conn:
            found = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    finally:
        engine.dispose()
    return {row_key(row, key): row for row in found}


# -- the test ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path, tmp_path: Path) -> None:
    """Each scenario file's plan decides exactly its keys, and a run leaves what it says."""
    scenario = load_scenario(path)
    what = f"{path.name}: {scenario['description']}"
    root = tmp_path / "catalog"
    table = build_catalog(root, scenario)
    policy = scenario["policy"]
    key = [policy["key"]] if isinstance(policy["key"], str) else list(policy["key"])
    as_of = scenario["as_of"]

    with Workspace.open(root, {"RETENTION_SECRET": SECRET}) as ws:
        placed = [
            ws.holds.place(reason="scenario", placed_by="test", secret=ws.secret, **kwargs)
            for kwargs in scenario.get("holds") or []
        ]
        before = table_rows(root, table, key)
        _, report = api.plan(ws, as_of=as_of, report=tmp_path / "plan.json")
        assert table_rows(root, table, key) == before, f"{what}: a plan changed the source"
        assert report is not None
        doc = json.loads(report.read_text(encoding="utf-8"))
        assert doc["as_of"] == as_of.isoformat()
        [result] = doc["policies"]
        assert result["status"] == "planned", f"{what}: {result['message']}"
        decided: dict[str, list[Key]] = {"expire": [], "held": [], "kept": []}
        for record in result["records"]:
            decision = record["decision"]
            if decision == "retain":  # listed only when an exception keeps a due record
                assert record.get("reason"), f"{what}: {record} is listed without a reason"
                decision = "kept"
            decided[decision].append(hashable(record["key"]))
            if decision == "held":
                assert record["hold"] in {h.hold_id for h in placed}, what
            else:
                assert record["hold"] is None, what
        for decision in ("expire", "held", "kept"):
            expected = [hashable(k) for k in scenario.get(decision) or []]
            got = decided[decision]
            assert len(got) == len(set(got)), f"{what}: a key decided twice: {got}"
            assert set(got) == set(expected), f"{what}: {decision}: {got} != {expected}"
        assert result["counts"] == scenario["counts"], what

        after_run = scenario.get("after_run")
        if after_run is None:
            return
        with on_the_day(as_of):
            outcome = api.run(ws, as_of=as_of)
        [ran] = outcome.policies
        assert ran.status == "completed", f"{what}: {ran.message}"
        if "counts" in after_run:
            assert ran.counts.as_dict() == after_run["counts"], what
        after = table_rows(root, table, key)
        check_after_run(what, scenario, before, after)
        certificates = list(ws.ledger.iter_certificates())
        certified = len(after_run.get("gone", [])) + len(after_run.get("anonymised", []))
        if policy["action"] == "archive" and policy.get("then", "keep") == "keep":
            certified = len(scenario["expire"])  # archived, and left in the source
        assert len(certificates) == ran.disposed == certified, what
        assert all(c["verified"] for c in certificates), what
        if policy["action"] == "archive":  # every certificate names its validated package
            packages = {c["archive"]["package"] for c in certificates}
            assert all((root / "archive" / name / "bagit.txt").is_file() for name in packages)

        if "again" in after_run:
            with on_the_day(as_of):
                second = api.run(ws, as_of=as_of)
            [again] = second.policies
            assert again.counts.as_dict() == after_run["again"], f"{what}: second run"
            assert again.disposed == 0, f"{what}: the second run disposed of records"
            assert table_rows(root, table, key) == after, f"{what}: the second run changed rows"
            assert len(list(ws.ledger.iter_certificates())) == len(certificates), what


def on_the_day(as_of: date) -> AbstractContextManager[object]:
    """The clock at noon of ``as_of`` when that day is still ahead: a run never acts as of a
    day after today."""
    if as_of <= date.today():
        return nullcontext()
    return freeze_time(datetime.combine(as_of, time(12)), tick=True)


def check_after_run(
    what: str,
    scenario: Mapping[str, Any],
    before: Mapping[Key, Mapping[str, Any]],
    after: Mapping[Key, Mapping[str, Any]],
) -> None:
    """Gone rows are gone, anonymised rows have their anonymised form, the rest is unchanged."""
    spec = scenario["after_run"]
    columns: dict[str, str] = scenario["table"]["columns"]
    strategies: dict[str, str] = scenario["policy"].get("anonymise") or {}
    gone = [hashable(k) for k in spec.get("gone", [])]
    untouched = [hashable(k) for k in spec.get("untouched", [])]
    anonymised = {hashable(e["key"]): e.get("values") or {} for e in spec.get("anonymised", [])}
    named = [*gone, *untouched, *anonymised]
    assert len(named) == len(set(named)), f"{what}: after_run names a key twice"
    assert set(named) == set(before), f"{what}: after_run must name every row: {sorted(before)}"

    for key in gone:
        assert key not in after, f"{what}: {key} should be gone"
    for key in untouched:
        assert after.get(key) == before[key], f"{what}: {key} should be untouched"
    for key, values in anonymised.items():
        assert set(values) <= set(columns), f"{what}: {key}: values name unknown columns"
        assert key in after, f"{what}: {key} should be anonymised, not deleted"
        row, old = after[key], before[key]
        for column, value in row.items():
            strategy = strategies.get(column)
            where = f"{what}: {key}.{column}"
            if strategy is None:
                assert value == old[column], f"{where} should be unchanged"
            elif strategy == "erase":
                assert value is None, f"{where} should be erased"
            elif strategy == "redact":  # a value is marked; an empty cell stays empty
                expected = None if old[column] is None else REDACTED
                assert value == expected, f"{where} should be redacted"
            elif strategy == "year":
                moment = old[column]
                expected = None if moment is None else type(moment)(moment.year, 1, 1)
                assert value == expected, f"{where} should keep only its year"
            else:
                assert strategy == "pseudonym", f"{where}: unknown strategy {strategy}"
                if old[column] is None:
                    assert value is None, where
                else:
                    assert HEX64.match(value) and value != old[column], f"{where}: {value!r}"
            if column in values:
                assert value == typed(columns[column], values[column], where), where
