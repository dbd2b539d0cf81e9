"""One run at a time: lock rows in the state database, taken over only from the dead.

A run locks its job (if any) and every policy it touches, all in one transaction, so two
runs of the same job, or two runs sharing a policy, never overlap — on one machine or many,
since the lock lives in the shared state database. A lock whose holder is a process on this
host that no longer exists, or whose heartbeat is older than the lease, is stale and is
taken over with a compare-and-swap on its owner, so two contenders can never both win.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from retention.errors import RunLocked
from retention.state import as_utc, locks, utcnow

#: A holder that has not shown a sign of life for this long is presumed dead.
LEASE = timedelta(minutes=15)


class RunLock:
    """The locks one run holds; refresh them while working, release them at the end."""

    def __init__(self, engine: Engine, names: Sequence[str]) -> None:
        self.engine = engine
        self.names = sorted(set(names))
        self.host = socket.gethostname()
        self.pid = os.getpid()
        started = _started(self.pid) or "?"
        self.owner = f"{self.host}:{self.pid}:{started}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> None:
        """Take every lock or none; RunLocked names the lock and its live holder."""
        try:
            with self.engine.begin() as conn:
                for name in self.names:
                    self._take(conn, name)
        except BaseException:
            self.release()  # a savepoint may have kept some: none means none
            raise

    def _take(self, conn: sa.Connection, name: str) -> None:
        now = utcnow()
        row = {"name": name, "owner": self.owner, "host": self.host, "pid": self.pid,
               "acquired_at": now, "heartbeat_at": now}  # fmt: skip
        try:
            with conn.begin_nested():
                conn.execute(locks.insert().values(row))
            return
        except sa_exc.IntegrityError:
            pass
        held = conn.execute(sa.select(locks).where(locks.c.name == name)).mappings().first()
        if held is None:  # released in between: try once more
            conn.execute(locks.insert().values(row))
            return
        if not self._stale(held["host"], held["pid"], held["owner"], as_utc(held["heartbeat_at"])):
            raise RunLocked(name, held["owner"], as_utc(held["acquired_at"]))
        taken = conn.execute(
            sa.update(locks).where(locks.c.name == name, locks.c.owner == held["owner"]).values(row)
        )
        if taken.rowcount != 1:
            raise RunLocked(name, "another run taking over a stale lock", now)

    def _stale(self, host: str, pid: int, owner: str, heartbeat: datetime) -> bool:
        if host == self.host:
            # Here we know for sure. A process now holding that pid but started at another
            # moment is not the holder: a restarted container is PID 1 again, yet new.
            parts = owner.split(":")
            then, now = (parts[2] if len(parts) > 3 else "?"), _started(pid)
            if then != "?" and now is not None and then != now:
                return True
            return not _alive(pid)
        return utcnow() - heartbeat > LEASE

    def refresh(self, conn: sa.Connection | None = None) -> None:
        """A sign of life, so a long run is never mistaken for a dead one; in ``conn``'s
        transaction when given (the one that is about to write intents), else its own.

        Raises RunLocked if a lock was taken over meanwhile (this run was presumed dead):
        going on would let two runs work on the same records.
        """
        if conn is None:
            with self.engine.begin() as own:
                self.refresh(own)
            return
        kept = conn.execute(
            sa.update(locks).where(locks.c.owner == self.owner).values(heartbeat_at=utcnow())
        ).rowcount
        if kept != len(self.names):
            raise RunLocked(", ".join(self.names), "a run that took this run's locks over",
                            utcnow())  # fmt: skip

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(locks).where(locks.c.owner == self.owner))


@contextmanager
def holding(engine: Engine, names: Sequence[str]) -> Iterator[RunLock]:
    lock = RunLock(engine, names)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


def _started(pid: int) -> str | None:
    """When a process started (clock ticks since boot, Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True
