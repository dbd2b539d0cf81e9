"""Match and ``unless`` values compare as the source compares them, not as Python does.

A case-insensitive collation (MariaDB's default, SQLite's NOCASE, a PostgreSQL ICU collation)
or a number column (``'1' = '01'``) make two values that differ in Python one value to the
database: ``check`` refuses two destroying policies that are disjoint only in Python, and a
record's ``unless`` exception is judged by the database's verdict, in plans and runs alike.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention import api
from retention.errors import CatalogError
from retention.testing import ScratchDatabase, quote_url
from retention.workspace import Workspace

AS_OF = date(2026, 11, 22)

#: Per backend, a column type under which the two values are one (and one under which not).
COLUMNS = {
    "case": {
        "sqlite": "VARCHAR(30) COLLATE NOCASE",
        "postgresql": "VARCHAR(30) COLLATE ci",
        "mariadb": "VARCHAR(30) COLLATE utf8mb4_general_ci",
    },
    "number": {"sqlite": "INTEGER", "postgresql": "INTEGER", "mariadb": "INTEGER"},
    "binary": {
        "sqlite": "VARCHAR(30)",
        "postgresql": 'VARCHAR(30) COLLATE "C"',
        "mariadb": "VARCHAR(30) COLLATE utf8mb4_bin",
    },
}
VALUES = {"case": ("asiakassopimus", "ASIAKASSOPIMUS"), "number": ("1", "01"),
          "binary": ("asiakassopimus", "ASIAKASSOPIMUS")}  # fmt: skip


def build(db: ScratchDatabase, column: str, rows: list[dict[str, object]]) -> None:
    """A ``contracts`` table whose ``contract_type`` and ``status`` have type ``column``."""
    engine = db.engine()
    with engine.begin() as conn:
        if db.backend == "postgresql":
            conn.execute(sa.text("CREATE COLLATION ci (provider = icu, "
                                 "locale = 'und-u-ks-level2', deterministic = false)"))  # fmt: skip
        conn.execute(sa.text(
            f"CREATE TABLE contracts (id INTEGER PRIMARY KEY, contract_type {column} NOT NULL, "
            f"status {column}, ended_on DATE)"
        ))  # fmt: skip
    table = sa.Table("contracts", sa.MetaData(), autoload_with=engine)
    if rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
    engine.dispose()


def catalog(root: Path, db: ScratchDatabase, state: ScratchDatabase, policies: str) -> Path:
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True)
    head = "register: {id: crm, name: CRM, controller: C, source: S}\npolicies:\n"
    (root / "policies" / "crm.yaml").write_text(head + policies, encoding="utf-8")
    (root / "connectors" / "src.yaml").write_text(f"id: src\nkind: sql\nurl: {quote_url(db.url)}\n")
    (root / "retention.yaml").write_text(f"state: {quote_url(state.url)}\nmax_due_share: 1\n")
    api.init(root, {})
    return root


def two_policies(first: str, second: str) -> str:
    return (
        f"  - {{id: keep-ten-years, connector: src, table: contracts, key: id,\n"
        f"     match: {{contract_type: '{first}'}}, trigger: ended_on, retain: P10Y,\n"
        f"     action: delete}}\n"
        f"  - {{id: delete-now, connector: src, table: contracts, key: id,\n"
        f"     match: {{contract_type: '{second}'}}, trigger: ended_on, retain: P0D,\n"
        f"     action: delete}}\n"
    )


def remaining(db: ScratchDatabase) -> list[int]:
    engine = db.engine()
    with engine.connect() as conn:
        ids = list(conn.scalars(sa.text("SELECT id FROM contracts ORDER BY id")))
    engine.dispose()
    return ids


@pytest.mark.parametrize("kind", ["case", "number"])
def test_check_refuses_policies_disjoint_only_in_python(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase,
    environ: dict[str, str], kind: str,
) -> None:  # fmt: skip
    """Two match values the source's collation counts as one: check and run refuse, naming
    both policies, file and line; nothing is deleted nine years early."""
    first, second = VALUES[kind]
    build(source_db, COLUMNS[kind][source_db.backend], [
        {"id": 1, "contract_type": first, "ended_on": date(2025, 1, 1)},
        {"id": 2, "contract_type": second, "ended_on": date(2025, 1, 1)},
    ])  # fmt: skip
    root = catalog(tmp_path / "c", source_db, state_db, two_policies(first, second))
    with Workspace.open(root, environ) as ws:
        with pytest.raises(CatalogError) as caught:
            api.check(ws)
        (problem,) = caught.value.problems
        assert (problem.file, problem.policy, problem.key) == ("policies/crm.yaml", "delete-now",
                                                               "match")  # fmt: skip
        assert problem.line == 7
        assert "crm/keep-ten-years (policies/crm.yaml:4)" in problem.message
        assert "the source compares their match: values as equal" in problem.message
        with pytest.raises(CatalogError):
            api.run(ws, as_of=AS_OF)
    assert remaining(source_db) == [1, 2]


def test_values_the_source_tells_apart_may_have_different_rules(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase,
    environ: dict[str, str],
) -> None:  # fmt: skip
    """Under a binary collation the two spellings are two filters: check passes, and each
    policy disposes of its own record only."""
    first, second = VALUES["binary"]
    build(source_db, COLUMNS["binary"][source_db.backend], [
        {"id": 1, "contract_type": first, "ended_on": date(2025, 1, 1)},
        {"id": 2, "contract_type": second, "ended_on": date(2025, 1, 1)},
    ])  # fmt: skip
    root = catalog(tmp_path / "c", source_db, state_db, two_policies(first, second))
    with Workspace.open(root, environ) as ws:
        api.check(ws)
        api.run(ws, as_of=AS_OF)
    assert remaining(source_db) == [1]


UNLESS = """\
  - {id: contracts, connector: src, table: contracts, key: id, trigger: ended_on, retain: P1Y,
     action: delete, unless: [{column: status, equals: active, reason: contract in force}]}
"""


def test_an_exception_is_met_as_the_source_compares(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase,
    environ: dict[str, str],
) -> None:  # fmt: skip
    """``unless: status = active`` keeps a row whose status the collation counts as equal
    ('ACTIVE'): the plan, the run and ``explain`` agree with the database's own re-check."""
    build(source_db, COLUMNS["case"][source_db.backend], [
        {"id": 1, "contract_type": "a", "status": "ACTIVE", "ended_on": date(2020, 1, 1)},
        {"id": 2, "contract_type": "a", "status": "ended", "ended_on": date(2020, 1, 1)},
    ])  # fmt: skip
    root = catalog(tmp_path / "c", source_db, state_db, UNLESS)
    with Workspace.open(root, environ) as ws:
        plan, _ = api.plan(ws, as_of=AS_OF)
        (planned,) = plan.policies
        assert (planned.counts.expire, planned.counts.retain) == (1, 1)
        why = api.explain(ws, "contracts", ["1"], as_of=AS_OF)
        assert (why.decision, why.reason) == ("retain", "contract in force")
        outcome = api.run(ws, as_of=AS_OF)
        (ran,) = outcome.policies
        assert (ran.disposed, ran.unchanged, ran.counts.expire) == (1, 0, 1)
    assert remaining(source_db) == [1]


def test_the_connector_compares_under_the_columns_collation(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase,
    environ: dict[str, str],
) -> None:  # fmt: skip
    """Trailing spaces (PAD SPACE, CHAR, RTRIM) and case count as the column counts them."""
    padded = {"sqlite": "VARCHAR(30) COLLATE RTRIM", "postgresql": "CHAR(30)",
              "mariadb": "VARCHAR(30) COLLATE utf8mb4_bin"}  # fmt: skip
    build(source_db, padded[source_db.backend], [])
    root = catalog(tmp_path / "c", source_db, state_db, UNLESS)
    with Workspace.open(root, environ) as ws:
        connector = ws.connector("src")
        assert connector.equal("contracts", "status", "x", "x ")
        assert not connector.equal("contracts", "status", "x", "X")
        assert not connector.equal("contracts", "status", "x", "y")
