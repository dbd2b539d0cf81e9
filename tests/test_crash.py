"""Crash safety: kill the engine with SIGKILL at each step of a batch, then run again.

Whatever moment the process dies at, after the next run every disposed record has exactly
one verified certificate, no surviving record has one, and the ledger verifies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention import api
from retention.pseudonym import Secret
from retention.state.database import locks, utcnow
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET

DRIVER = """
import os, signal, sys
from datetime import date
from retention import api
from retention.connectors.sql import SqlConnector
from retention.evidence.ledger import Ledger
from retention.workspace import Workspace

catalog, point, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
calls = [0]

def due():
    calls[0] += 1
    return calls[0] == nth

def die():
    os.kill(os.getpid(), signal.SIGKILL)

# The engine changes a batch through apply_reported (which may call apply itself).
apply, append, checkpoint = SqlConnector.apply_reported, Ledger.append, Ledger.checkpoint
if point == "before-source-commit":
    def patched(self, *args):
        if due():
            die()
        return apply(self, *args)
    SqlConnector.apply_reported = patched
elif point == "after-source-commit":
    def patched(self, *args):
        result = apply(self, *args)
        if due():
            die()
        return result
    SqlConnector.apply_reported = patched
elif point == "before-certificates":
    def patched_append(conn, bodies):
        if bodies and due():
            die()
        return append(conn, bodies)
    Ledger.append = staticmethod(patched_append)
elif point == "before-certificate-commit":
    def patched_append(conn, bodies):
        result = append(conn, bodies)
        if bodies and due():
            die()
        return result
    Ledger.append = staticmethod(patched_append)
elif point == "before-checkpoint":
    def patched_checkpoint(self, *args):
        die()
    Ledger.checkpoint = patched_checkpoint
with Workspace.open(catalog, {"RETENTION_SECRET": os.environ["RETENTION_SECRET"]}) as ws:
    api.run(ws, as_of=date.fromisoformat(sys.argv[4]))
print("survived")
"""

POINTS = [
    ("before-source-commit", 1),
    ("before-source-commit", 3),
    ("after-source-commit", 1),
    ("after-source-commit", 4),
    ("before-certificates", 2),
    ("before-certificate-commit", 1),
    ("before-certificate-commit", 5),
    ("before-checkpoint", 1),
]


def kill_at(catalog: Path, point: str, nth: int) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "RETENTION_SECRET": SECRET}
    cmd = [sys.executable, "-c", DRIVER, str(catalog), point, str(nth), AS_OF.isoformat()]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)


def lease_runs_out(ws: Workspace) -> None:
    """Move the killed run's lock leases into the past, as waiting one lease would: its locks
    are stale only then (a lease is minutes long; the takeover itself is what is tested)."""
    with ws.state.begin() as conn:
        held = conn.execute(sa.update(locks).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert held.rowcount >= 1, "the killed run left its locks"


def disposed_and_surviving(ws: Workspace) -> tuple[set[str], set[str]]:
    """Record references of disposed and of surviving due records, read from the source."""
    secret = Secret(SECRET.encode())
    engine = ws.connector("crm").engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        alumni = conn.execute(sa.text("SELECT id, first_name FROM alumni")).all()
        contracts = {tuple(r) for r in conn.execute(sa.text("SELECT site, case_no FROM contracts"))}
        interviewees = {r[0] for r in conn.execute(sa.text("SELECT id FROM interviewees"))}
    disposed, surviving = set(), set()
    for key, first_name in alumni:
        ref = secret.record_ref("crm", "alumni", [key])
        (disposed if first_name is None else surviving).add(ref)
    for key in [("HQ", "C-1"), ("B", "C-1"), ("B", "C-3"), ("HQ", "C-2"), ("B", "C-2")]:
        ref = secret.record_ref("crm", "contracts", list(key))
        (surviving if key in contracts else disposed).add(ref)
    for key in (1, 2, 3):
        ref = secret.record_ref("crm", "interviewees", [key])
        (surviving if key in interviewees else disposed).add(ref)
    return disposed, surviving


@pytest.mark.parametrize(("point", "nth"), POINTS, ids=[f"{p}-{n}" for p, n in POINTS])
def test_killed_mid_batch_then_rerun_leaves_exactly_one_certificate_per_disposal(
    catalog: Path, environ: dict[str, str], point: str, nth: int
) -> None:
    """SIGKILL at a step of a batch: the next run completes the evidence, never doubles it."""
    kill_at(catalog, point, nth)
    with Workspace.open(catalog, environ) as ws:
        lease_runs_out(ws)
        midway = list(ws.ledger.iter_certificates())
        disposed_midway, _ = disposed_and_surviving(ws)
        # Whatever the crash left, no certificate claims a disposal that did not happen.
        assert {c["record_ref"] for c in midway} <= disposed_midway
        outcome = api.run(ws, as_of=AS_OF)
        certs = list(ws.ledger.iter_certificates())
        disposed, surviving = disposed_and_surviving(ws)
        report = api.verify_ledger(ws)
    refs = [c["record_ref"] for c in certs]
    assert outcome.exit_code == 0
    assert len(disposed) == 9  # every due record: 3 alumni, 3 contracts, 3 interviewees
    assert sorted(refs) == sorted(disposed), "one certificate per disposed record"
    assert not set(refs) & surviving
    assert all(c["verified"] for c in certs)
    assert report.ok, report.faults
    assert report.unsigned == 0
