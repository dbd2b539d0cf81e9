"""The state database knows its secret: another RETENTION_SECRET is refused, never used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention import api
from retention.errors import EXIT_INVALID, UsageError
from retention.state.database import certificates, plans, secret_fingerprint
from retention.state.installation import SecretMismatch
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET
from tests.test_cli import make_catalog

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


def test_rotation_carries_holds_and_certified_records_to_the_new_secret(catalog: Path) -> None:
    """`secret rotate` needs both secrets; it refuses while an active subject hold names a
    subject on no record (changing nothing), then rewrites the subject holds, keeps every
    certified record `done` (no second certificate), makes older plans stale and turns the
    old secret away. The held alumnus is still held under the new secret."""
    old_env = {"RETENTION_SECRET": SECRET, "NEW_SECRET": OTHER}
    with Workspace.open(catalog, old_env) as ws:
        kept = api.place_hold(
            ws, reason="litigation", placed_by="legal", subject="020291-901B"
        ).hold
        lost = api.place_hold(
            ws, reason="complaint", placed_by="legal", subject="no-such", force=True
        ).hold
        first = api.run(ws, as_of=AS_OF)
        made, _ = api.plan(ws, as_of=AS_OF)
        certified = count(ws, certificates)
        with ws.state.connect() as conn:
            before = tuple(conn.execute(sa.select(secret_fingerprint)).one())
        with pytest.raises(UsageError, match=lost.hold_id):
            api.rotate_secret(ws, "NEW_SECRET")
        with ws.state.connect() as conn:
            assert tuple(conn.execute(sa.select(secret_fingerprint)).one()) == before
        with pytest.raises(UsageError, match="not set"):
            api.rotate_secret(ws, "UNSET_VARIABLE")
        ws.holds.release(lost.hold_id, "legal")
        rotation = api.rotate_secret(ws, "NEW_SECRET")
        with pytest.raises(SecretMismatch):
            api.run(ws, as_of=AS_OF)  # the same workspace, still with the old secret
    assert first.disposed == certified == 8  # 2 alumni, 3 contracts, 3 interviewees
    assert rotation.certified == 2 and rotation.holds == 1  # the anonymised alumni stay
    with Workspace.open(catalog, {"RETENTION_SECRET": OTHER}) as ws:
        names = alumni_names(ws)
        again = api.run(ws, as_of=AS_OF)
        assert again.disposed == 0 and count(ws, certificates) == certified
        assert alumni_names(ws) == names and names[2] == "Eero"  # still held
        explained = api.explain(ws, "alumni-membership", ["1"], as_of=AS_OF)
        assert explained.decision == "done"
        assert api.explain(ws, "alumni-membership", ["2"], as_of=AS_OF).decision == "held"
        assert api.verify_ledger(ws).ok
        with pytest.raises(UsageError, match="before RETENTION_SECRET was rotated"):
            api.approve(ws, made.plan_id, by="Records Manager")
        assert [h.hold_id for h in ws.holds.active(AS_OF)] == [kept.hold_id]
    with (
        Workspace.open(catalog, old_env) as ws,
        pytest.raises(SecretMismatch),
    ):
        api.rotate_secret(ws, "NEW_SECRET")


def test_secret_rotate_on_the_command_line(tmp_path: Path) -> None:
    """`retention secret rotate --new-from-env VAR` rotates (exit 0, says what to do next);
    the old secret then exits 2, the new one works (SQLite: the API test covers the rest)."""
    catalog = make_catalog(tmp_path).root

    def retention(*args: str, secret: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", ""), "RETENTION_SECRET": secret, **extra}
        cmd = [sys.executable, "-m", "retention", *args, "--catalog", str(catalog)]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)

    rotated = retention("secret", "rotate", "--new-from-env", "NEXT", secret=SECRET, NEXT=OTHER)
    assert rotated.returncode == 0, rotated.stderr
    assert "now set RETENTION_SECRET to the value of NEXT" in rotated.stdout
    refused = retention("plan", "--as-of", AS_OF.isoformat(), secret=SECRET)
    assert refused.returncode == EXIT_INVALID and "retention secret rotate" in refused.stderr
    planned = retention("plan", "--as-of", AS_OF.isoformat(), secret=OTHER)
    assert planned.returncode == 0, planned.stderr


def test_the_scheduler_and_its_jobs_refuse_another_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler started with another secret refuses to start (exit 2), and a job fired
    with it ends with exit 2 having disposed of nothing."""
    from retention.scheduler import Scheduler, run_job

    catalog = make_catalog(tmp_path).root
    with Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws:
        _ = ws.secret  # recorded
        before = alumni_names(ws)
    monkeypatch.setenv("RETENTION_SECRET", OTHER)
    monkeypatch.delenv("CRM_URL", raising=False)
    with pytest.raises(SecretMismatch):
        Scheduler(catalog).start(paused=True)
    assert run_job(str(catalog), "nightly") == EXIT_INVALID
    with Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws:
        assert alumni_names(ws) == before and count(ws, certificates) == 0


def test_an_alias_written_outside_a_rotation_makes_nothing_done(catalog: Path) -> None:
    """With write access to the state database but not the key: a row in ref_aliases that
    points an overdue record at another record's certificate is refused when done is asked
    (the record is disposed of as due) and reported by verify."""
    from retention.state.database import ref_aliases

    environ = {"RETENTION_SECRET": SECRET}
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, policies=["interviewees"], as_of=AS_OF)  # certificates to point at
        (cert,) = [c for c in ws.ledger.iter_certificates() if c["policy"] == "interviewees"][:1]
        victim = ws.secret.record_ref("crm", "alumni", ["1"])  # alumnus 1: due since 2019
        with ws.state.begin() as conn:
            conn.execute(ref_aliases.insert().values(
                register="xamk-alumni", policy="alumni-membership", record_ref=victim,
                certified_ref=cert["record_ref"], fingerprint=None, signature="AAAA",
            ))  # fmt: skip
            conn.execute(sa.update(certificates).where(
                certificates.c.record_ref == cert["record_ref"]).values(
                register="xamk-alumni", policy="alumni-membership"))  # fmt: skip
        report = api.verify_ledger(ws)
        assert any("record alias" in f and "not signed" in f for f in report.faults)
    with Workspace.open(catalog, environ) as ws:
        assert api.explain(ws, "alumni-membership", ["1"], as_of=AS_OF).decision == "expire"
