"""`retention check` against live sources: every mismatch found at once, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from retention import api
from retention.errors import CatalogError, Problem
from retention.testing import ScratchDatabase
from retention.workspace import Workspace

POLICIES = """\
register: {id: reg, name: Register, controller: Controller, source: Notice}
policies:
  - {id: no-table, connector: src, table: missing_table, key: id, trigger: ended_on,
     retain: P1Y, action: delete}
  - {id: no-column, connector: src, table: people, key: id, match: {code: a},
     trigger: ended_on, retain: P1Y, action: anonymise, anonymise: {nickname: erase}}
  - {id: duplicate-key, connector: src, table: people, key: code, match: {code: b},
     trigger: ended_on, retain: P1Y, action: delete}
  - {id: text-trigger, connector: src, table: people, key: id, match: {code: c},
     trigger: born_text, retain: P1Y, action: delete}
  - {id: strategies, connector: src, table: people, key: id, match: {code: d},
     trigger: ended_on, retain: P1Y, action: anonymise,
     anonymise: {name: erase, short_note: redact, born_text: year, short_ref: pseudonym}}
  - {id: unique-index-key, connector: src, table: people, key: card, match: {code: e},
     trigger: ended_on, retain: P1Y, action: delete}
  - {id: fits, connector: src, table: people, key: id, match: {code: f}, subject: card,
     trigger: ended_on, retain: P1Y, action: anonymise,
     anonymise: {nullable_name: erase, long_note: redact, born: year, long_ref: pseudonym}}
"""


def build(url: str) -> None:
    md = sa.MetaData()
    people = sa.Table(
        "people", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("card", sa.String(20), nullable=False, unique=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("nullable_name", sa.String(50)),
        sa.Column("short_note", sa.String(5)),
        sa.Column("long_note", sa.String(200)),
        sa.Column("born_text", sa.String(10)),
        sa.Column("born", sa.Date),
        sa.Column("long_ref", sa.String(64)),
        sa.Column("short_ref", sa.String(20)),
        sa.Column("ended_on", sa.Date),
    )  # fmt: skip
    engine = sa.create_engine(url)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(people.insert(), [
            {"id": i, "code": "b", "card": f"K{i}", "name": f"N{i}"} for i in (1, 2)
        ])  # fmt: skip
    engine.dispose()


def catalog_for(root: Path, url: str, state: str) -> Path:
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True)
    (root / "policies" / "reg.yaml").write_text(POLICIES, encoding="utf-8")
    (root / "connectors" / "src.yaml").write_text(f"id: src\nkind: sql\nurl: {url}\n")
    (root / "retention.yaml").write_text(f"state: {state}\n")
    return root


def problems(root: Path) -> list[Problem]:
    with Workspace.open(root, {}) as ws, pytest.raises(CatalogError) as caught:
        api.check(ws)
    return list(caught.value.problems)


def test_every_mismatch_with_the_source_is_reported_at_once(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase
) -> None:
    """Missing table/column, non-unique key, text trigger and unwritable strategies: all listed."""
    build(source_db.url)
    found = problems(catalog_for(tmp_path / "c", source_db.url, state_db.url))
    by = {(p.policy, p.key): p for p in found}
    assert all(p.file == "policies/reg.yaml" for p in found)
    assert "missing_table" in by[("no-table", "table")].message
    assert "'nickname' does not exist" in by[("no-column", "anonymise.nickname")].message
    assert "not unique" in by[("duplicate-key", "key")].message
    assert "DATE or DATETIME" in by[("text-trigger", "trigger")].message
    assert "NOT NULL" in by[("strategies", "anonymise.name")].message
    assert "holds 5" in by[("strategies", "anonymise.short_note")].message
    assert "year needs a DATE" in by[("strategies", "anonymise.born_text")].message
    assert "holds 20" in by[("strategies", "anonymise.short_ref")].message
    assert not [p for p in found if p.policy in ("unique-index-key", "fits")]
    assert len(found) == 8


def test_check_changes_nothing_in_the_source(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase
) -> None:
    """A failing check leaves the source exactly as it was."""
    build(source_db.url)
    engine = sa.create_engine(source_db.url)
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT * FROM people ORDER BY id")).all()
    problems(catalog_for(tmp_path / "c", source_db.url, state_db.url))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT * FROM people ORDER BY id")).all() == before
    engine.dispose()


def test_missing_sqlite_source_is_reported_not_created(tmp_path: Path) -> None:
    """A connector pointing at a SQLite file that does not exist is an error; no file appears."""
    url = f"sqlite:///{tmp_path / 'nowhere.db'}"
    found = problems(catalog_for(tmp_path / "c", url, "sqlite:///state.db"))
    assert any(p.file == "connectors/src.yaml" and "does not exist" in p.message for p in found)
    assert not (tmp_path / "nowhere.db").exists()


def test_unreachable_server_is_reported_for_its_policies(tmp_path: Path) -> None:
    """A server that refuses connections is one problem at its connector, not a traceback."""
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"
    found = problems(catalog_for(tmp_path / "c", url, "sqlite:///state.db"))
    assert len(found) == 1  # once, at the connector, not once per policy
    assert found[0].file == "connectors/src.yaml" and found[0].key == "url"
    assert "cannot connect" in found[0].message


def test_one_check_lists_yaml_schema_and_live_problems_of_every_file(tmp_path: Path) -> None:
    """A tab in one file hides neither that file's other problems nor the live ones; a
    mistyped key, strategy, connector or column says which name was meant; a period reads
    the same in `retain` as in settings and options ('10 years' or P10Y)."""
    from tests.conftest import build_sources, write_catalog

    source = f"sqlite:///{tmp_path / 'source.db'}"
    build_sources(source)
    root = write_catalog(tmp_path / "catalog", source, f"sqlite:///{tmp_path / 'state.db'}")
    xamk = root / "policies" / "xamk.yaml"
    text = xamk.read_text(encoding="utf-8")
    text = text.replace("    table: alumni\n", "\ttable: alumni\n")  # a tab: invalid YAML
    text = text.replace("trigger: membership_ended_on", "trigger: membership_ended")
    text = text.replace("    retain: P10Y\n", "    retain: 10 years\n")  # valid, as in words
    text = text.replace("legal_basis:", "legal_bassis:")
    amk = root / "policies" / "amkoodari.yaml"
    amk_text = amk.read_text(encoding="utf-8").replace("connector: crm", "connector: crn")
    amk.write_text(amk_text, encoding="utf-8")
    xamk.write_text(
        text.replace("first_name: erase", "first_name: erse").replace(
            "  - id: project-contracts\n", "  - id: project-contracts\n    tabel: contracts\n"
        ),
        encoding="utf-8",
    )
    with pytest.raises(CatalogError) as caught:
        api.check_catalog(root, {})
    found = [str(p) for p in caught.value.problems]
    text_of = "\n".join(found)

    def one(*parts: str) -> str:
        (line,) = [p for p in found if all(part in p for part in parts)]
        return line

    assert one("xamk.yaml:", "tab character", "spaces only").split(":")[1].isdigit()
    assert "did you mean 'legal_basis'?" in one("alumni-membership", "legal_bassis")
    assert "did you mean 'erase'?" in one("alumni-membership", "anonymise.first_name")
    assert "did you mean 'table'?" in one("project-contracts", "tabel")
    assert "did you mean 'crm'?" in one("amkoodari.yaml", "interviewees", "connector")
    assert "key 'retain'" not in text_of  # '10 years' is a period like P10Y
    assert len(found) == 5, text_of


def test_a_live_problem_of_a_file_with_a_tab_is_found_in_the_same_pass(tmp_path: Path) -> None:
    from tests.conftest import build_sources, write_catalog

    source = f"sqlite:///{tmp_path / 'source.db'}"
    build_sources(source)
    root = write_catalog(tmp_path / "catalog", source, f"sqlite:///{tmp_path / 'state.db'}")
    xamk = root / "policies" / "xamk.yaml"
    text = xamk.read_text(encoding="utf-8").replace("    table: alumni\n", "\ttable: alumni\n")
    xamk.write_text(text.replace("trigger: membership_ended_on", "trigger: membership_ended"))
    with pytest.raises(CatalogError) as caught:
        api.check_catalog(root, {})
    found = [str(p) for p in caught.value.problems]
    assert len(found) == 2, found
    assert "tab character" in found[0]
    assert "column 'membership_ended' does not exist" in found[1]
    assert "did you mean 'membership_ended_on'?" in found[1]


def test_two_connectors_to_one_database_are_one_source_to_the_overlap_rule(
    tmp_path: Path,
) -> None:
    """A second connector to the same SQLite file (another spelling of its path, another
    driver) does not let a P0D rule delete rows a P10Y rule on the same table keeps."""
    from tests.conftest import build_sources, write_catalog

    source = tmp_path / "source.db"
    build_sources(f"sqlite:///{source}")
    root = write_catalog(tmp_path / "catalog", f"sqlite:///{source}", f"sqlite:///{tmp_path}/s.db")
    (root / "connectors" / "crm-again.yaml").write_text(
        f"id: crm-again\nkind: sql\nurl: sqlite+pysqlite:///{tmp_path}/./source.db\n"
    )
    (root / "policies" / "again.yaml").write_text(
        "register: {id: again, name: Again, controller: C, source: S}\n"
        "policies:\n"
        "  - {id: quick-contracts, connector: crm-again, table: contracts, key: [site, case_no],\n"
        "     match: {contract_type: customer}, trigger: ended_on, retain: P0D, action: delete}\n"
    )
    with pytest.raises(CatalogError) as caught:
        api.check_catalog(root, {})
    found = [str(p) for p in caught.value.problems]
    assert any(
        "again" in p and "customer-contracts" in p and "destroys rows" in p for p in found
    ), found
