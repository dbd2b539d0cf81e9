"""What ``retention init`` writes into a new catalog: a working, commented example and guards.

A records manager starting from an empty folder learns the catalog from a register that
runs: one policy, its connector and a job, over a small SQLite table of synthetic members that
``init`` creates beside them. ``check`` and ``plan`` work on it at once; then it is replaced
by the organisation's registers. A ``.gitignore`` keeps the private key, a generated secret
and the state database out of the catalog's repository.
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from retention.filemodes import private_dirs, write_private

EXAMPLE_DB = "example/members.db"
SECRET_FILE = "keys/retention-secret"  # noqa: S105 - a file name, not a secret

GITIGNORE = """\
# Written by `retention init`: what must never be committed with the catalog.
# The private signing key and a generated RETENTION_SECRET:
keys/
# SQLite state databases (plans, holds, ledger) and the example source:
*.db
*.db-journal
*.db-wal
*.db-shm
# Reports and archive packages name records and hold personal data:
reports/
archive/
"""

POLICY = """\
# An example register, written by `retention init`, to be replaced by your own.
# One file per register; every key is described in docs/catalog.md.
register:
  id: example-members
  name: Example member register
  controller: Example Organisation
  source: "Privacy notice of the example register, section 'How long we keep data'"
  statutory: false                # true: erasure requests are refused (the law requires keeping)
policies:
  - id: former-members
    description: Contact details are anonymised two years after membership ended.
    connector: example-db         # a file in connectors/
    table: members
    key: id                       # unique: records are named by key in reports and certificates
    subject: person_id            # finds a person's records for holds and erasure requests
    trigger: left_on              # empty = the member has not left: kept
    retain: 2 years               # or P2Y; `permanent` keeps for ever
    action: anonymise             # anonymise | delete | archive | review
    anonymise: {email: erase, person_id: pseudonym, notes: redact}
    legal_basis: "GDPR 6(1)(b), membership"
"""

CONNECTOR = """\
# An example source, written by `retention init`: a SQLite file of synthetic members.
# Point `url` at your database (any SQLAlchemy URL); keep passwords in the environment.
id: example-db
kind: sql
url: ${EXAMPLE_DB_URL:-sqlite:///example/members.db}
"""

JOB = """\
# An example schedule, written by `retention init`: a dry run every Monday at 07:00,
# its report for the records managers in the settings' `reports` folder.
id: weekly-review
schedule: "0 7 * * 1"
policies: ["*"]
mode: dry-run                     # enforce | dry-run | review
report: [html, csv]
"""


def is_empty(root: Path) -> bool:
    """A catalog with no policy, connector or job file yet: one to scaffold."""
    return not any(
        path.suffix in (".yaml", ".yml")
        for folder in ("policies", "connectors", "jobs")
        if (root / folder).is_dir()
        for path in (root / folder).iterdir()
    )


def write_example(root: Path, today: date) -> list[Path]:
    """Write the example register, its source and job (into an empty catalog only)."""
    written = []
    for relative, text in (
        ("policies/example-members.yaml", POLICY),
        ("connectors/example-db.yaml", CONNECTOR),
        ("jobs/weekly-review.yaml", JOB),
    ):
        path = root / relative
        path.write_text(text, encoding="utf-8")
        written.append(path)
    written.append(_example_source(root / EXAMPLE_DB, today))
    return written


def write_gitignore(root: Path) -> Path | None:
    """A ``.gitignore`` for the catalog, unless it has one (the operator's is kept)."""
    path = root / ".gitignore"
    if path.exists():
        return None
    path.write_text(GITIGNORE, encoding="utf-8")
    return path


def generate_secret(root: Path) -> Path:
    """A new random RETENTION_SECRET in ``keys/retention-secret`` (0600), unless one is
    there; it is never printed."""
    path = root / SECRET_FILE
    if not path.exists():
        private_dirs(path.parent)
        write_private(path, (secrets.token_hex(32) + "\n").encode("ascii"))
    return path


def _example_source(path: Path, today: date) -> Path:
    """Twelve synthetic members, some of whom left long enough ago to be due."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    md = sa.MetaData()
    members = sa.Table(
        "members", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.String(64)),
        sa.Column("email", sa.String(200)),
        sa.Column("notes", sa.Text),
        sa.Column("left_on", sa.Date),
    )  # fmt: skip
    try:
        md.create_all(engine)
        with engine.begin() as conn:
            if conn.scalar(sa.select(sa.func.count()).select_from(members)):
                return path
            conn.execute(members.insert(), [
                {"id": n, "person_id": f"EX-{n:04d}", "email": f"member{n}@example.invalid",
                 "notes": "synthetic example" if n % 3 else None,
                 "left_on": None if n % 4 == 0 else today - timedelta(days=200 * n)}
                for n in range(1, 13)
            ])  # fmt: skip
    finally:
        engine.dispose()
    return path
