"""One run at a time: a second run gives up cleanly, a dead holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.enforce.locks import RunLock
from retention.errors import EXIT_LOCKED, RunLocked
from retention.state.database import certificates, intent_batches, locks, utcnow
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET

HOLDER = """
import sys, time
from datetime import timedelta
from retention.enforce.locks import RunLock
from retention.state.database import open_state
lock = RunLock(open_state(sys.argv[1]), [sys.argv[2]], timedelta(seconds=float(sys.argv[3])))
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""
#: The lease of the holder process: it renews it five times a lease while alive.
HOLDER_LEASE = 1.5


def hold_in_another_process(state_url: str, name: str) -> subprocess.Popen[str]:
    """A separate process that takes ``name`` and keeps it until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, state_url, name, str(HOLDER_LEASE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def run_cli(catalog: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "RETENTION_SECRET": SECRET}
    cmd = [sys.executable, "-m", "retention", "run", "--catalog", str(catalog),
           "--as-of", AS_OF.isoformat(), "--policy", "interviewees"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def test_a_second_run_gives_up_while_the_first_holds_the_policy(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Another live process holding the policy makes `run` exit 5, naming the lock, however
    long it holds it (it renews its lease); no change. Once it is killed its lease runs out
    and the next run takes the lock over."""
    with Workspace.open(catalog, environ) as ws:
        state_url = ws.catalog.state_url
    holder = hold_in_another_process(state_url, "policy:amkoodari/interviewees")
    try:
        time.sleep(HOLDER_LEASE * 1.5)  # past its first lease: renewed, so still live
        blocked = run_cli(catalog)
        assert blocked.returncode == EXIT_LOCKED, blocked.stderr
        assert "policy:amkoodari/interviewees is locked by another run" in blocked.stderr
        with Workspace.open(catalog, environ) as ws:
            assert list(ws.ledger.iter_certificates()) == []
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder died without releasing: once its lease ends the next run takes it over.
    time.sleep(HOLDER_LEASE + 0.2)
    taken = run_cli(catalog)
    assert taken.returncode == 0, taken.stderr
    assert "disposed of 3 records" in taken.stdout
    with Workspace.open(catalog, environ) as ws, ws.state.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(locks)) == 0


def test_runs_on_different_policies_do_not_block_each_other(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A lock on one policy leaves the others free to run."""
    with Workspace.open(catalog, environ) as ws:
        other = RunLock(ws.state, ["policy:xamk-alumni/alumni-membership"])
        other.acquire()
        outcome = api.run(ws, policies=["interviewees"], as_of=AS_OF)
        with pytest.raises(RunLocked):
            api.run(ws, policies=["xamk-alumni/*"], as_of=AS_OF)
        other.release()
    assert outcome.disposed == 3


def test_a_lock_without_a_heartbeat_for_the_lease_is_taken_over(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A holder on another host that has gone silent past the lease loses its lock."""
    with Workspace.open(catalog, environ) as ws:
        with ws.state.begin() as conn:
            old = utcnow() - timedelta(hours=1)
            conn.execute(locks.insert().values(
                name="policy:amkoodari/interviewees", owner="elsewhere:1:x", host="elsewhere",
                pid=1, acquired_at=old, heartbeat_at=old,
            ))  # fmt: skip
        outcome = api.run(ws, policies=["interviewees"], as_of=AS_OF)
        fresh = utcnow() - timedelta(seconds=30)
        with ws.state.begin() as conn:
            conn.execute(locks.insert().values(
                name="job:nightly", owner="elsewhere:2:y", host="elsewhere", pid=2,
                acquired_at=fresh, heartbeat_at=fresh,
            ))  # fmt: skip
        with pytest.raises(RunLocked, match="job:nightly"):
            api.run(ws, job="nightly", as_of=AS_OF)
    assert outcome.disposed == 3


def test_a_run_whose_lock_was_taken_over_changes_nothing_more(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run presumed dead and taken over while it reads its next batch stops before that
    batch touches the source: the lock is checked in the transaction that writes the batch's
    intents. What it had already changed keeps its certificates."""
    with Workspace.open(catalog, environ) as ws:
        connector = ws.connector("crm")
        pages, apply = connector.candidates, connector.apply_reported
        applied: list[int] = []

        def candidates(selection: Any, batch_size: int) -> Iterator[Any]:
            for number, page in enumerate(pages(selection, batch_size)):
                if number == 1:
                    with ws.state.begin() as conn:  # another run takes the locks over
                        conn.execute(sa.update(locks).values(owner="host:1:0:other"))
                yield page

        def counted(selection: Any, keys: Any, change: Any, columns: Any) -> Any:
            applied.append(len(keys))
            return apply(selection, keys, change, columns)

        monkeypatch.setattr(connector, "candidates", candidates)
        monkeypatch.setattr(connector, "apply_reported", counted)
        outcome = api.run(ws, policies=["interviewees"], as_of=AS_OF)
        report = api.verify_ledger(ws)
        with ws.state.connect() as conn:
            certified = conn.scalar(sa.select(sa.func.count()).select_from(certificates))
            pending = conn.scalar(sa.select(sa.func.count()).select_from(intent_batches))
    (policy,) = outcome.policies
    assert applied == [2]  # batch_size 2: the second batch never reached the source
    assert policy.status == "failed" and "locked" in (policy.message or "")
    assert policy.disposed == 2 and certified == 2 and pending == 0 and report.ok


def replica_lock(engine: sa.Engine, names: list[str], monkeypatch: pytest.MonkeyPatch,
                 lease: timedelta = timedelta(minutes=5)) -> RunLock:  # fmt: skip
    """A lock made as a container replica would: host name "replica", and a pid that is the
    same in every replica and means nothing here (PID 1 of another pid namespace)."""
    with monkeypatch.context() as patch:
        patch.setattr(socket, "gethostname", lambda: "replica")
        patch.setattr(os, "getpid", lambda: 4_000_000)  # no process here has it
        return RunLock(engine, names, lease)


def test_replicas_with_the_same_host_name_and_pid_never_take_a_live_lock(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two holders with one host name and one pid are two holders: the second is refused
    while the first's lease lasts (renewed past its length), and takes the lock over only
    once that lease has run out; the first then finds it lost."""
    with Workspace.open(catalog, environ) as ws:
        first = replica_lock(ws.state, ["job:nightly"], monkeypatch, timedelta(seconds=1))
        second = replica_lock(ws.state, ["job:nightly"], monkeypatch)
        assert first.owner != second.owner
        first.acquire()
        try:
            time.sleep(1.3)  # longer than the lease: the holder's renewals keep it live
            with pytest.raises(RunLocked, match="job:nightly"):
                second.acquire()
            first._stop.set()  # it stops renewing, as a killed replica does
            with ws.state.begin() as conn:
                conn.execute(sa.update(locks).values(lease_until=utcnow() - timedelta(seconds=1)))
            second.acquire()
            with pytest.raises(RunLocked):
                first.refresh()
            with ws.state.connect() as conn:
                owner = conn.scalar(sa.select(locks.c.owner).where(locks.c.name == "job:nightly"))
            assert owner == second.owner
        finally:
            second.release()
            first.release()
