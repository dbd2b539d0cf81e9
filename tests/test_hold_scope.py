"""A hold covers exactly what ``hold add`` said it covers, and nothing it says is untrue.

The count ``hold add`` prints is the source's own (its collation: MariaDB's default, SQLite's
NOCASE, a PostgreSQL ICU collation), while a run matches a hold's key text and subject
reference exactly. So a record hold stores the key as the source stores it, and a subject
hold covers every spelling the source stores for that subject: the records counted are the
records held. A hold that cannot be in force (an ``--until`` already past) and a key the
source cannot name (a path that leaves the share) are refused, nothing stored.
"""

from __future__ import annotations

import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from retention import api
from retention.errors import UsageError
from retention.testing import ScratchDatabase, quote_url
from retention.workspace import Workspace

AS_OF = date(2026, 11, 22)

#: Per backend, a case-insensitive text column.
CASELESS = {
    "sqlite": "VARCHAR(60) COLLATE NOCASE",
    "postgresql": "VARCHAR(60) COLLATE ci",
    "mariadb": "VARCHAR(60) COLLATE utf8mb4_general_ci",
}

POLICY = """\
register: {id: treg, name: T, controller: C, source: S}
policies:
  - {id: people, connector: src, table: people, key: id, subject: email, trigger: ended_on,
     retain: P1Y, action: delete}
"""

ROWS = [
    ("KK-10002", "held.person@example.fi"),
    ("KK-10003", "Held.Person@Example.fi"),
    ("KK-10004", "someone.else@example.fi"),
]


def build(db: ScratchDatabase) -> None:
    """``people``: a caseless key and subject column, every row long overdue."""
    column = CASELESS[db.backend]
    engine = db.engine()
    with engine.begin() as conn:
        if db.backend == "postgresql":
            conn.execute(sa.text("CREATE COLLATION ci (provider = icu, "
                                 "locale = 'und-u-ks-level2', deterministic = false)"))  # fmt: skip
        conn.execute(sa.text(f"CREATE TABLE people (id {column} PRIMARY KEY, "
                             f"email {column}, ended_on DATE)"))  # fmt: skip
    table = sa.Table("people", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"id": key, "email": email, "ended_on": date(2020, 1, 1)} for key, email in ROWS
        ])  # fmt: skip
    engine.dispose()


def write_catalog(root: Path, source: ScratchDatabase, state: ScratchDatabase) -> Path:
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True)
    (root / "policies" / "treg.yaml").write_text(POLICY, encoding="utf-8")
    url = quote_url(source.url)
    (root / "connectors" / "src.yaml").write_text(f"id: src\nkind: sql\nurl: {url}\n")
    (root / "retention.yaml").write_text(
        f"state: {quote_url(state.url)}\nmax_due_share: 1\ntimezone: Europe/Helsinki\n"
    )
    api.init(root, {})
    return root


def remaining(db: ScratchDatabase) -> list[str]:
    engine = db.engine()
    with engine.connect() as conn:
        keys = list(conn.scalars(sa.text("SELECT id FROM people")))
    engine.dispose()
    return sorted(keys)


@pytest.fixture
def people(tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase) -> Path:
    build(source_db)
    return write_catalog(tmp_path / "c", source_db, state_db)


def test_a_record_hold_holds_the_record_the_source_counted(
    people: Path, source_db: ScratchDatabase, environ: dict[str, str]
) -> None:
    """``--record kk-10002`` names KK-10002 to a caseless key: the hold counts it, stores the
    key as the source stores it, and the plan holds it and the run keeps it."""
    with Workspace.open(people, environ) as ws:
        placed = api.place_hold(ws, reason="case 7", placed_by="op", policy="treg/people",
                                record=["kk-10002"])  # fmt: skip
        assert placed.covered == {"treg/people": 1}
        plan, _ = api.plan(ws, as_of=AS_OF)
        (planned,) = plan.policies
        assert (planned.counts.held, planned.counts.expire) == (1, 2)
        api.run(ws, as_of=AS_OF)
        assert remaining(source_db) == ["KK-10002"]
        assert placed.hold.record_key == '["KK-10002"]'  # as the source stores it


def test_a_subject_hold_holds_every_spelling_the_source_counted(
    people: Path, source_db: ScratchDatabase, environ: dict[str, str]
) -> None:
    """Two rows whose subject the source counts as one person are both held: the hold covers
    each spelling stored, under one id that ``hold release`` releases whole."""
    with Workspace.open(people, environ) as ws:
        placed = api.place_hold(ws, reason="case 8", placed_by="op",
                                subject="held.person@example.fi")  # fmt: skip
        assert placed.covered == {"treg/people": 2}
        plan, _ = api.plan(ws, as_of=AS_OF)
        (planned,) = plan.policies
        assert (planned.counts.held, planned.counts.expire) == (2, 1)
        api.run(ws, as_of=AS_OF)
        assert remaining(source_db) == ["KK-10002", "KK-10003"]
        base = placed.hold.hold_id
        ids = sorted(h.hold_id for h in placed.holds)
        assert ids == [base, f"{base}.2"]
        assert len({h.subject_ref for h in placed.holds}) == 2
        assert {(h.reason, h.placed_by) for h in placed.holds} == {("case 8", "op")}
        ws.holds.release(base, "op")
        assert ws.holds.active(AS_OF) == []
        api.run(ws, as_of=AS_OF)
    assert remaining(source_db) == []


def test_a_subject_hold_in_another_spelling_holds_the_stored_ones(
    people: Path, source_db: ScratchDatabase, environ: dict[str, str]
) -> None:
    """A subject typed in a spelling no row has is stored as the spellings the rows have."""
    with Workspace.open(people, environ) as ws:
        placed = api.place_hold(ws, reason="case 9", placed_by="op",
                                subject="HELD.PERSON@EXAMPLE.FI")  # fmt: skip
        assert placed.covered == {"treg/people": 2}
        api.run(ws, as_of=AS_OF)
        assert remaining(source_db) == ["KK-10002", "KK-10003"]
        assert len(placed.holds) == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_until_already_past_is_refused(people: Path, environ: dict[str, str]) -> None:
    """``--until 2026-01-12`` (a typo for 2026-12-01) would never be in force: refused with
    exit 2 and nothing stored; today itself (the catalog's time zone) is a valid last day."""
    # 23:30 UTC on 11 Dec is already 12 Dec in Helsinki.
    with Workspace.open(people, environ) as ws, freeze_time("2026-12-11 23:30:00"):
        for until in (date(2026, 1, 12), date(2026, 12, 11)):
            with pytest.raises(UsageError, match="--until") as caught:
                api.place_hold(ws, reason="x", placed_by="op", policy="treg/people",
                               record=["KK-10002"], until=until)  # fmt: skip
            assert caught.value.exit_code == 2
            assert f"--until {until} is before today (2026-12-12" in str(caught.value)
        assert ws.holds.all() == []
        placed = api.place_hold(ws, reason="x", placed_by="op", policy="treg/people",
                                record=["KK-10002"], until=date(2026, 12, 12))  # fmt: skip
        assert placed.hold.active(date(2026, 12, 12))


SHARE_POLICY = """\
register: {id: sreg, name: S, controller: C, source: S}
policies:
  - {id: files, connector: share, path: "*.txt", until: 2022-06-30, action: delete}
"""


def test_a_malformed_share_key_is_refused_not_reported_unreachable(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    """``./other.txt`` or ``other.txt/`` is no key a run compares: refused (exit 2, nothing
    stored, the path not repeated) instead of placed as "could not count"; a reachable
    share counts a real key."""
    root = tmp_path / "c"
    for folder in ("policies", "connectors", "jobs", "share"):
        (root / folder).mkdir(parents=True)
    (root / "share" / "other.txt").write_text("x")
    (root / "policies" / "sreg.yaml").write_text(SHARE_POLICY, encoding="utf-8")
    (root / "connectors" / "share.yaml").write_text("id: share\nkind: files\nroot: share\n")
    (root / "retention.yaml").write_text("state: sqlite:///state.db\n")
    api.init(root, {})
    with Workspace.open(root, environ) as ws:
        for key in ("./other.txt", "other.txt/", "../c/share/other.txt"):
            with pytest.raises(UsageError, match="is not a key of sreg/files") as caught:
                api.place_hold(ws, reason="x", placed_by="op", policy="sreg/files",
                               record=[key], force=True)  # fmt: skip
            assert caught.value.exit_code == 2
            assert "other.txt" not in str(caught.value)
        assert ws.holds.all() == []
        placed = api.place_hold(ws, reason="x", placed_by="op", policy="sreg/files",
                                record=["other.txt"])  # fmt: skip
        assert placed.covered == {"sreg/files": 1} and placed.uncounted == {}
        api.run(ws, as_of=AS_OF)
    assert (root / "share" / "other.txt").exists()
    (root / "share").rename(root / "away")  # unreachable: only a real key is placed, uncounted
    with Workspace.open(root, environ) as ws:
        with pytest.raises(UsageError, match="is not a key of sreg/files"):
            api.place_hold(ws, reason="x", placed_by="op", policy="sreg/files",
                           record=["./other.txt"])  # fmt: skip
        placed = api.place_hold(ws, reason="x", placed_by="op", policy="sreg/files",
                                record=["other.txt"])  # fmt: skip
        assert placed.covered == {"sreg/files": None}
        assert list(placed.uncounted) == ["sreg/files"]
        assert placed.hold.record_key == '["other.txt"]'


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_hold_add_names_each_entry_and_release_takes_them_all(people: Path) -> None:
    """The command line: the count, the entries the hold is stored as, exit 2 for a past
    ``--until`` (nothing stored), and ``hold release`` of the hold's id releasing each entry."""
    from tests.test_cli import explain, retention

    def on(*args: str) -> subprocess.CompletedProcess[str]:
        return retention("hold", *args, "--catalog", people, cwd=people.parent)

    past = on("add", "--policy", "treg/people", "--record", "KK-10002", "--reason", "x",
              "--until", "2020-01-12")  # fmt: skip
    assert past.returncode == 2, explain(past)
    assert "--until 2020-01-12 is before today" in past.stderr
    added = on("add", "--subject", "held.person@example.fi", "--reason", "case 8", "--by", "op")
    assert added.returncode == 0, explain(added)
    found = re.search(r"placed hold (H-[0-9a-f]{8}): it covers 2 record\(s\) today", added.stdout)
    assert found is not None, explain(added)
    base = found.group(1)
    assert "stored as 2 entries" in added.stdout and f"{base}, {base}.2" in added.stdout
    assert "example.fi" not in added.stdout + added.stderr
    listed = on("list")
    assert listed.returncode == 0 and f"{base}.2" in listed.stdout, explain(listed)
    released = on("release", base, "--by", "op")
    assert released.returncode == 0, explain(released)
    assert "H-" not in on("list").stdout


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_rotation_carries_every_entry_of_a_subject_hold(
    people: Path, source_db: ScratchDatabase, environ: dict[str, str]
) -> None:
    """Each entry names a spelling found on a record, so ``secret rotate`` carries them all
    and both records stay held under the new secret."""
    new = "another-secret-" + "y" * 40
    with Workspace.open(people, {**environ, "NEW_SECRET": new}) as ws:
        placed = api.place_hold(ws, reason="case 8", placed_by="op",
                                subject="held.person@example.fi")  # fmt: skip
        assert api.rotate_secret(ws, "NEW_SECRET").holds == 2
    with Workspace.open(people, {"RETENTION_SECRET": new}) as ws:
        api.run(ws, as_of=AS_OF)
        assert {h.hold_id for h in ws.holds.active(AS_OF)} == {h.hold_id for h in placed.holds}
    assert remaining(source_db) == ["KK-10002", "KK-10003"]
