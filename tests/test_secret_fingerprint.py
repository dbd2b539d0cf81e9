"""The state database knows its secret: another RETENTION_SECRET is refused, never used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention import api
from retention.errors import EXIT_INVALID
from retention.installation import SecretMismatch
from retention.state import certificates, plans, secret_fingerprint
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET

OTHER = "another-secret-" + "y" * 40
HELD_SUBJECT = "010190-900A"  # alumnus 1, due since 2019


def alumni_names(ws: Workspace) -> dict[int, str | None]:
    engine = ws.connector("crm").engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT id, first_name FROM alumni")).all())  # type: ignore[arg-type]


def count(ws: Workspace, table: sa.Table) -> int:
    with ws.state.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def test_another_secret_is_refused_by_every_command_that_uses_references(
    catalog: Path,
) -> None:
    """A hold placed under one secret, then `run` under another: exit 2 naming the cause and
    `retention secret rotate`, the held record untouched, no certificate; plan, explain,
    erase, replay, hold add and hold report refuse the same way."""
    with Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws:
        api.place_hold(ws, reason="litigation", placed_by="legal", subject=HELD_SUBJECT)
        before = alumni_names(ws)
    env = {"PATH": os.environ.get("PATH", ""), "RETENTION_SECRET": OTHER}
    cmd = [sys.executable, "-m", "retention", "run", "--catalog", str(catalog),
           "--as-of", AS_OF.isoformat()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == EXIT_INVALID, proc.stderr
    assert "RETENTION_SECRET is not the secret this state database was initialised with" in (
        proc.stderr
    )
    assert "retention secret rotate" in proc.stderr
    with Workspace.open(catalog, {"RETENTION_SECRET": OTHER}) as ws:
        assert alumni_names(ws) == before
        assert count(ws, certificates) == 0
        calls = [
            lambda: api.run(ws, as_of=AS_OF),
            lambda: api.plan(ws, as_of=AS_OF),
            lambda: api.explain(ws, "alumni-membership", ["1"], as_of=AS_OF),
            lambda: api.erase(ws, HELD_SUBJECT, as_of=AS_OF),
            lambda: api.replay(ws, AS_OF, dry_run=True),
            lambda: api.hold_report(ws, AS_OF),
            lambda: api.place_hold(ws, reason="x", placed_by="y", subject="someone"),
        ]
        for call in calls:
            with pytest.raises(SecretMismatch, match="rotate"):
                call()
        assert count(ws, plans) == 0 and count(ws, certificates) == 0
        assert alumni_names(ws) == before


def test_init_records_the_fingerprint_and_never_the_secret(
    catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """init without the secret records nothing; the first command using it records a salted
    scrypt digest (not the secret, not a plain hash) and says so once; init with the same
    secret keeps it, with another refuses."""
    with Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws:
        assert count(ws, secret_fingerprint) == 0
        _ = ws.secret
        with ws.state.connect() as conn:
            row = conn.execute(sa.select(secret_fingerprint)).one()
    assert SECRET not in str(tuple(row)) and row.scheme.startswith("scrypt")
    assert len(row.salt) == 32 and len(row.digest) == 64
    assert "SecretFingerprintRecorded" in "".join(capsys.readouterr())
    with Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws:
        _ = ws.secret
    assert "SecretFingerprintRecorded" not in "".join(capsys.readouterr())
    assert api.init(catalog, {"RETENTION_SECRET": SECRET}).secret == "kept"
    with pytest.raises(SecretMismatch):
        api.init(catalog, {"RETENTION_SECRET": OTHER})
