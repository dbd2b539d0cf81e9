"""Shared fixtures: one fresh database per test on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from retention.testing import BACKENDS, ScratchDatabase, scratch_database, server_problem

SECRET = "test-secret-" + "x" * 40
_checked: dict[str, str | None] = {}


def _require(backend: str) -> None:
    if backend not in _checked:
        _checked[backend] = server_problem(backend)
    problem = _checked[backend]
    if problem is None:
        return
    if os.environ.get("RETENTION_TEST_SKIP_SERVERS") == "1":
        pytest.skip(problem)
    pytest.fail(f"{problem} (start it, or set RETENTION_TEST_SKIP_SERVERS=1 to skip)")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every test taking this runs once per backend."""
    name: str = request.param
    _require(name)
    return name


@pytest.fixture
def source_db(backend: str, tmp_path: Path) -> Iterator[ScratchDatabase]:
    """A fresh, empty source database on the test's backend."""
    with scratch_database(backend, tmp_path) as db:
        yield db


@pytest.fixture
def state_db(backend: str, tmp_path: Path) -> Iterator[ScratchDatabase]:
    """A fresh, empty state database on the test's backend."""
    with scratch_database(backend, tmp_path) as db:
        yield db


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """A test that configures logging onto its captured stream must not leak it to the next."""
    yield
    import structlog

    structlog.reset_defaults()


@pytest.fixture
def environ() -> dict[str, str]:
    """The environment commands see: only the secret, so no shell variable leaks in."""
    return {"RETENTION_SECRET": SECRET}


AS_OF = __import__("datetime").date(2026, 11, 22)

POLICIES = """\
register:
  id: xamk-alumni
  name: Alumnirekisteri
  controller: Kaakkois-Suomen Ammattikorkeakoulu Oy
  source: "Alumnit ja asiakkuudet, tietosuojailmoitus 8.12.2022"
policies:
  - id: alumni-membership
    connector: crm
    table: alumni
    key: id
    subject: person_id
    secret: turvakielto
    match: {kind: alumni}
    trigger: membership_ended_on
    retain: P0D
    action: anonymise
    anonymise: {first_name: erase, email: erase, birth_date: year, person_id: pseudonym,
                notes: redact}
    max_per_run: MAX_ALUMNI
    legal_basis: "GDPR 6(1)(f)"
  - id: customer-contracts
    connector: crm
    table: contracts
    key: [site, case_no]
    match: {contract_type: customer}
    trigger: ended_on
    retain: P10Y
    count_from: year_end
    action: delete
  - id: project-contracts
    connector: crm
    table: contracts
    key: [site, case_no]
    match: {contract_type: [project]}
    trigger: ended_on
    retain: P20Y
    count_from: year_end
    action: delete
---
register:
  id: amkoodari
  name: AMKoodari
  controller: Metropolia
  source: "AMKoodari"
policies:
  - id: interviewees
    connector: crm
    table: interviewees
    key: id
    until: 2022-06-30
    action: delete
"""


def build_sources(url: str) -> None:
    """Create and fill the test tables (dates chosen around AS_OF = 2026-11-22)."""
    import datetime as dt

    import sqlalchemy as sa

    d = dt.date.fromisoformat
    md = sa.MetaData()
    alumni = sa.Table(
        "alumni", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.String(100)),
        sa.Column("first_name", sa.String(50)),
        sa.Column("email", sa.String(100)),
        sa.Column("birth_date", sa.Date),
        sa.Column("notes", sa.String(200)),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("turvakielto", sa.Integer, nullable=False, default=0),
        sa.Column("membership_ended_on", sa.Date, index=True),
    )  # fmt: skip
    contracts = sa.Table(
        "contracts", md,
        sa.Column("site", sa.String(10), primary_key=True),
        sa.Column("case_no", sa.String(20), primary_key=True),
        sa.Column("contract_type", sa.String(20), nullable=False),
        sa.Column("ended_on", sa.Date),
    )  # fmt: skip
    interviewees = sa.Table(
        "interviewees", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(100)),
    )  # fmt: skip
    engine = sa.create_engine(url)
    md.create_all(engine)
    people = [
        (1, "010190-900A", "Aino", "aino@example.fi", "1990-01-01", "alumni", "2019-05-31"),
        (2, "020291-901B", "Eero", "eero@example.fi", "1991-02-02", "alumni", "2026-11-22"),
        (3, "030392-902C", "Helmi", "helmi@example.fi", "1992-03-03", "alumni", "2026-11-23"),
        (4, "040493-903D", "Onni", "onni@example.fi", "1993-04-04", "alumni", None),
        (5, "050594-904E", "Väinö", "vaino@example.fi", "1994-05-05", "staff", "2010-01-01"),
        (6, "060695-905F", "Lumi", "lumi@example.fi", "1995-06-06", "alumni", "2016-02-29"),
    ]
    with engine.begin() as conn:
        conn.execute(alumni.insert(), [
            {"id": i, "person_id": p, "first_name": f, "email": e, "birth_date": d(b),
             "notes": f"note about {f}", "kind": k, "turvakielto": int(i == 6),
             "membership_ended_on": d(t) if t else None}
            for i, p, f, e, b, k, t in people
        ])  # fmt: skip
        conn.execute(contracts.insert(), [
            {"site": s, "case_no": c, "contract_type": t, "ended_on": d(e)}
            for s, c, t, e in [
                ("HQ", "C-1", "customer", "2015-12-31"),
                ("HQ", "C-2", "customer", "2016-01-01"),
                ("B", "C-1", "customer", "2010-06-30"),
                ("B", "C-2", "project", "2010-06-30"),
                ("B", "C-3", "project", "2005-03-01"),
            ]
        ])  # fmt: skip
        conn.execute(
            interviewees.insert(),
            [
                {"id": 1, "name": "Kalle"},
                {"id": 2, "name": "Ville"},
                {"id": 3, "name": "Elli"},
            ],
        )
    engine.dispose()


def write_catalog(root: Path, source_url: str, state_url: str, max_alumni: int = 100) -> Path:
    """A catalog in ``root`` whose connector and state point at the given databases."""
    from retention import api

    text = POLICIES.replace("MAX_ALUMNI", str(max_alumni))
    first, second = text.split("---\n")
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "policies" / "xamk.yaml").write_text(first, encoding="utf-8")
    (root / "policies" / "amkoodari.yaml").write_text(second, encoding="utf-8")
    (root / "connectors" / "crm.yaml").write_text(
        f"id: crm\nkind: sql\nurl: ${{CRM_URL:-{source_url}}}\n", encoding="utf-8"
    )
    (root / "jobs" / "nightly.yaml").write_text(
        'id: nightly\nschedule: "30 2 * * *"\npolicies: ["*"]\n', encoding="utf-8"
    )
    (root / "retention.yaml").write_text(
        f"state: {state_url}\nsigning_key: keys/signing.pem\ntimezone: Europe/Helsinki\n"
        "batch_size: 2\n",
        encoding="utf-8",
    )
    api.init(root, {})
    return root


@pytest.fixture
def catalog(tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase) -> Path:
    """A ready catalog (sources filled, state initialised, key created) on one backend."""
    build_sources(source_db.url)
    return write_catalog(tmp_path / "catalog", source_db.url, state_db.url)
