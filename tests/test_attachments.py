"""Rows that point at files on a share: the files go into the archive and leave with the row."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention import api
from retention.errors import CatalogError
from retention.testing import ScratchDatabase
from retention.workspace import Workspace

AS_OF = dt.date(2026, 11, 22)

POLICY = """\
register: {{id: amkoodari, name: AMKoodari, controller: Metropolia, source: Seloste}}
policies:
  - id: interviews
    connector: db
    table: interviews
    key: id
    trigger: interviewed_on
    retain: P2Y
    attachments: {{column: recording, connector: {share}}}
{action}
"""


@pytest.fixture
def catalog(tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase) -> Path:
    md = sa.MetaData()
    interviews = sa.Table(
        "interviews", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("recording", sa.String(200)),
        sa.Column("interviewed_on", sa.Date),
    )  # fmt: skip
    engine = sa.create_engine(source_db.url)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(interviews.insert(), [
            {"id": 1, "recording": "2020/a.wav", "interviewed_on": dt.date(2020, 3, 2)},
            {"id": 2, "recording": "2020/b.wav", "interviewed_on": dt.date(2020, 4, 2)},
            {"id": 3, "recording": "2026/c.wav", "interviewed_on": dt.date(2026, 1, 5)},
            {"id": 4, "recording": None, "interviewed_on": dt.date(2019, 1, 5)},
        ])  # fmt: skip
    engine.dispose()
    root = tmp_path / "catalog"
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True)
    share = root / "share"
    for name in ("2020/a.wav", "2020/b.wav", "2026/c.wav"):
        (share / name).parent.mkdir(parents=True, exist_ok=True)
        (share / name).write_bytes(b"RIFF" + name.encode())
    (root / "connectors" / "db.yaml").write_text(f"id: db\nkind: sql\nurl: {source_db.url}\n")
    (root / "connectors" / "share.yaml").write_text("id: share\nkind: files\nroot: share\n")
    (root / "retention.yaml").write_text(f"state: {state_db.url}\n")
    api.init(root, {})
    return root


def write_policy(root: Path, action: str, share: str = "share") -> None:
    text = POLICY.format(share=share, action=action)
    (root / "policies" / "amkoodari.yaml").write_text(text, encoding="utf-8")


def ids(ws: Workspace) -> list[int]:
    engine = ws.connector("db").engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return list(conn.scalars(sa.text("SELECT id FROM interviews ORDER BY id")))


def test_deleting_a_row_deletes_the_files_it_points_at(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Due rows and their recordings go together; each certificate is verified for both."""
    write_policy(catalog, "    action: delete")
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        left = ids(ws)
        certs = list(ws.ledger.iter_certificates())
    assert outcome.exit_code == 0 and left == [3]
    assert sorted(p.name for p in (catalog / "share").rglob("*.wav")) == ["c.wav"]
    assert len(certs) == 3 and all(c["verified"] for c in certs)


def test_archived_rows_carry_their_files_into_the_package(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Archive then delete: the package holds each row's recording as it was, then both go."""
    write_policy(catalog, "    action: archive\n    then: delete")
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF).policies[0]
    package = catalog / "archive" / str(outcome.archived)
    stored = {
        json.loads(p.read_text())["key"][0]: json.loads(p.read_text())["files"]
        for p in (package / "data" / "records").iterdir()
    }
    assert sorted(stored) == ["1", "2", "4"] and stored["4"] == []
    copied = sorted(p.read_bytes() for p in (package / "data" / "files").rglob("*.wav"))
    assert copied == [b"RIFF2020/a.wav", b"RIFF2020/b.wav"]
    assert sorted(p.name for p in (catalog / "share").rglob("*.wav")) == ["c.wav"]


def test_a_row_pointing_outside_the_share_stops_the_policy_unchanged(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A path climbing out of the share is refused before any row or file is touched."""
    write_policy(catalog, "    action: delete")
    with Workspace.open(catalog, environ) as ws:
        engine = ws.connector("db").engine  # type: ignore[attr-defined]
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE interviews SET recording = '../../etc/passwd' WHERE id = 2")
            )
        outcome = api.run(ws, as_of=AS_OF)
        left = ids(ws)
        certs = list(ws.ledger.iter_certificates())
    assert outcome.policies[0].status == "failed"
    assert left == [1, 2, 3, 4] and certs == []
    assert len(list((catalog / "share").rglob("*.wav"))) == 3


def test_attachments_must_live_on_a_file_share(catalog: Path) -> None:
    """Naming a database connector as the attachments' home is a catalog error."""
    write_policy(catalog, "    action: delete", share="db")
    with pytest.raises(CatalogError, match="must be a file share"):
        Workspace.open(catalog, {})
