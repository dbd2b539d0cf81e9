"""The shipped catalog and the synthetic demo sources it runs on by default."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.catalog import clock
from retention.catalog.clock import Duration
from retention.catalog.loading import SETTINGS_FILE, BoundPolicy, Catalog, load_catalog
from retention.demo.data import (
    build_demo_shares,
    build_demo_sources,
    fake_henkilotunnus,
    henkilotunnus,
)
from retention.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 11, 22)
CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
HETU = re.compile(r"^(\d{2})(\d{2})(\d{2})([-+A])(\d{3})([0-9A-Y])$")
CENTURY = {"+": 1800, "-": 1900, "A": 2000}


def copy_catalog(target: Path) -> Path:
    """Copy the shipped catalog (policies, connectors, jobs, records plans, settings) into
    ``target``."""
    for folder in ("policies", "connectors", "jobs", "records-plans"):
        shutil.copytree(REPO / folder, target / folder)
    shutil.copy2(REPO / SETTINGS_FILE, target / SETTINGS_FILE)
    return target


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, dict[str, Path]]:
    """A copy of the shipped catalog with its demo sources built as of AS_OF (read only)."""
    root = copy_catalog(tmp_path_factory.mktemp("catalog"))
    built = {**build_demo_sources(root, AS_OF), **build_demo_shares(root, AS_OF)}
    return load_catalog(root, environ={}), built


@pytest.fixture(scope="module")
def engines(demo: tuple[Catalog, dict[str, Path]]) -> Iterator[dict[str, sa.Engine]]:
    """One engine per shipped connector, on the URL the catalog resolves by default."""
    catalog, _ = demo
    made = {
        sid: sa.create_engine(catalog.source_url(s))
        for sid, s in catalog.sources.items()
        if s.kind == "sql"
    }
    yield made
    for engine in made.values():
        engine.dispose()


def verify_hetu(hetu: str) -> tuple[date, int]:
    """Check a henkilötunnus independently of the generator; return its date and number."""
    found = HETU.match(hetu)
    assert found, f"{hetu!r} is not DDMMYY, sign, NNN, check"
    day, month, year, sign, number, check = found.groups()
    born = date(CENTURY[sign] + int(year), int(month), int(day))
    assert check == CHECK_CHARACTERS[int(day + month + year + number) % 31], hetu
    return born, int(number)


def all_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            return {
                name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.c))]
                for name, table in sorted(metadata.tables.items())
            }
    finally:
        engine.dispose()


def test_henkilotunnus_matches_the_published_example() -> None:
    """The check character follows DVV's mod-31 rule: 13 Oct 1952, number 308 → 131052-308T."""
    assert henkilotunnus(date(1952, 10, 13), 308) == "131052-308T"
    assert henkilotunnus(date(2001, 1, 5), 900).startswith("050101A900")


def test_fake_henkilotunnus_verifies_and_uses_only_test_numbers() -> None:
    """Generated ids carry a valid check character and an individual number in 900–999."""
    import random

    rng = random.Random(7)
    first, last = date(1899, 1, 1).toordinal(), date(2099, 12, 31).toordinal()
    for ordinal in range(first, last + 1, 97):
        born = date.fromordinal(ordinal)
        offset = ordinal - first
        female = offset % 2 == 0
        hetu = fake_henkilotunnus(rng, born, female=female)
        parsed, number = verify_hetu(hetu)
        assert parsed == born
        assert 900 <= number <= 999
        assert number % 2 == (0 if female else 1), "even numbers are women's, odd men's"


def test_every_henkilotunnus_in_the_demo_is_a_test_code(
    demo: tuple[Catalog, dict[str, Path]], engines: dict[str, sa.Engine]
) -> None:
    """Every hetu column in every demo database holds only valid test codes (900–999)."""
    seen = 0
    for engine in engines.values():
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.tables.values():
                if "hetu" not in table.c:
                    continue
                query = sa.select(table.c.hetu).where(table.c.hetu.is_not(None))
                for hetu in conn.execute(query).scalars():
                    assert 900 <= verify_hetu(hetu)[1] <= 999
                    seen += 1
    assert seen > 100


def test_same_seed_builds_identical_rows(tmp_path: Path) -> None:
    """Building twice with the same as-of day and seed gives the same rows in every table."""
    first = build_demo_sources(tmp_path / "a", AS_OF, seed=11)
    second = build_demo_sources(tmp_path / "b", AS_OF, seed=11)
    other = build_demo_sources(tmp_path / "c", AS_OF, seed=12)
    assert first.keys() == second.keys() == other.keys()
    for connector, path in first.items():
        rows = all_rows(path)
        assert rows == all_rows(second[connector]), connector
        assert rows != all_rows(other[connector]), f"{connector} ignores the seed"


def test_rebuilding_replaces_the_old_files(tmp_path: Path) -> None:
    """A rebuild starts from a fresh file: rows added since the last build are gone."""
    built = build_demo_sources(tmp_path, AS_OF)
    path = built["xamk-crm"]
    before = all_rows(path)
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE stray (id INTEGER)"))
        conn.execute(sa.text("DELETE FROM alumni"))
    engine.dispose()
    assert build_demo_sources(tmp_path, AS_OF)["xamk-crm"] == path
    assert all_rows(path) == before


def test_shipped_catalog_loads() -> None:
    """The shipped catalog loads with only its defaults: five registers, every one with rules."""
    catalog = load_catalog(REPO, environ={})
    assert len(list((REPO / "policies").glob("*.yaml"))) == 5
    assert sorted(catalog.registers) == [
        "amkoodari",
        "jamk-mobility",
        "karelia-winhapro",
        "sedu-atomi",
        "xamk-alumni",
    ]
    assert catalog.registers["sedu-atomi"].statutory
    assert {"nightly"} <= set(catalog.jobs)
    for policy in catalog.policies:
        assert policy.policy.legal_basis, f"{policy.name} names no legal basis"
        if policy.policy.destroys:
            assert policy.policy.max_per_run, f"{policy.name} has no safety valve"


def test_every_connector_default_points_at_a_demo_file(
    demo: tuple[Catalog, dict[str, Path]],
) -> None:
    """Each shipped connector's default is the SQLite file or share the demo builder writes."""
    catalog, built = demo
    assert set(built) == set(catalog.sources)
    for source_id, source in catalog.sources.items():
        where = str(built[source_id].resolve())
        expected = where if source.kind == "files" else f"sqlite:///{where}"
        assert catalog.source_url(source) == expected


def test_every_policy_table_has_the_named_columns(
    demo: tuple[Catalog, dict[str, Path]],
    engines: dict[str, sa.Engine],
) -> None:
    """Every table a shipped policy names exists with its key (unique), trigger and columns."""
    catalog, _ = demo
    for bound in (b for b in catalog.policies if b.policy.table is not None):
        policy = bound.policy
        assert policy.table is not None
        inspector = sa.inspect(engines[policy.connector])
        assert inspector.has_table(policy.table), bound.name
        columns = {c["name"]: c for c in inspector.get_columns(policy.table)}
        named = [*policy.key, *policy.match, *policy.anonymise]
        named += [c for c in (policy.subject, *policy.trigger) if c]
        assert set(named) <= set(columns), f"{bound.name}: {set(named) - set(columns)}"
        primary = inspector.get_pk_constraint(policy.table)["constrained_columns"]
        assert sorted(primary) == sorted(policy.key), bound.name
        for name in policy.trigger:
            assert isinstance(columns[name]["type"], sa.Date | sa.DateTime), bound.name


def test_engine_check_accepts_the_demo_sources(demo: tuple[Catalog, dict[str, Path]]) -> None:
    """``retention check`` finds nothing wrong with the shipped catalog on the demo sources."""
    catalog, _ = demo
    with Workspace(catalog, {}) as ws:
        notes = api.check(ws)
    assert len(notes) == len(catalog.policies)


def _counts(engine: sa.Engine, bound: BoundPolicy) -> dict[str, int]:
    """How many matching rows are due, retained with a trigger, and without one on AS_OF."""
    policy = bound.policy
    table = sa.Table(policy.table, sa.MetaData(), autoload_with=engine)
    where = [
        table.c[name].in_(value) if isinstance(value, tuple) else table.c[name] == value
        for name, value in policy.match.items()
    ]
    with engine.connect() as conn:

        def count(*clauses: sa.ColumnElement[bool]) -> int:
            query = sa.select(sa.func.count()).select_from(table).where(*where, *clauses)
            return int(conn.scalar(query) or 0)

        if policy.until is not None:
            total = count()
            due = total if clock.expires_on_until(policy.until) <= AS_OF else 0
            return {"due": due, "kept": total - due, "open": 0}
        assert policy.trigger and policy.retain
        if policy.retain.permanent:  # archived once the trigger has passed
            bound_day: date | None = AS_OF + timedelta(days=1)
        else:
            assert policy.retain.duration
            bound_day = clock.due_bound(AS_OF, policy.retain.duration, policy.count_from)
        assert bound_day is not None
        trigger = table.c[policy.trigger[0]]
        limit: date | datetime = bound_day
        if isinstance(trigger.type, sa.DateTime):
            limit = datetime.combine(bound_day, time())
        return {
            "due": count(trigger < limit),
            "kept": count(trigger >= limit),
            "open": count(trigger.is_(None)),
        }


def test_every_enabled_policy_has_due_retained_and_running_records(
    demo: tuple[Catalog, dict[str, Path]],
    engines: dict[str, sa.Engine],
) -> None:
    """On AS_OF each enabled rule finds records due, retained and not yet started.

    A fixed ``until`` date that has passed makes every record due at once, and a permanent
    record is archived as soon as it exists; those rules only need due records.
    """
    catalog, _ = demo
    enabled = [b for b in catalog.policies if b.policy.enabled and b.policy.table is not None]
    assert enabled
    for bound in enabled:
        counts = _counts(engines[bound.policy.connector], bound)
        permanent = bound.policy.retain is not None and bound.policy.retain.permanent
        if bound.policy.until is not None or permanent:
            assert counts["due"] > 0, (bound.name, counts)
        elif bound.policy.retain is not None and bound.policy.retain.duration == Duration():
            # Due the day it happens (a document signed): only "not yet" is retained.
            assert counts["due"] > 0 and counts["open"] > 0, (bound.name, counts)
        else:
            assert min(counts.values()) > 0, (bound.name, counts)


def test_karelia_marks_some_students_secret(engines: dict[str, sa.Engine]) -> None:
    """The Karelia student table marks a few students 'tiedot salaiset', some of them due."""
    engine = engines["karelia-winhapro"]
    students = sa.Table("students", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        secret = (
            conn.execute(sa.select(students.c.ended_on).where(students.c.secret.is_(True)))
            .scalars()
            .all()
        )
        total = conn.scalar(sa.select(sa.func.count()).select_from(students)) or 0
    assert 0 < len(secret) < total / 5
    assert any(ended is not None and ended <= AS_OF for ended in secret)
