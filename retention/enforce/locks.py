"""One run at a time: lock rows in the state database, held by lease.

A run locks its job (if any) and every policy it touches, all in one transaction, so two
runs of the same job, or two runs sharing a policy, never overlap — on one machine or many,
since the lock lives in the shared state database. A holder is known by a random instance
id, never by its host name and pid: two replicas of a container share a fixed host name and
are both PID 1. It holds its locks by a lease that it renews (a background thread, and every
batch) and that ends at ``lease_until``. Only a lock whose lease has run out is stale; it is
taken over with a compare-and-swap on its owner, so two contenders can never both win. A
killed run's locks are therefore taken over one lease after its last renewal.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from retention.errors import RunLocked
from retention.logs import get_logger
from retention.state.database import as_utc, locks, utcnow

#: How long a lock outlives its holder's last renewal (the catalog's ``lock_lease``).
LEASE = timedelta(minutes=5)
#: A lease is renewed this many times per lease, so a renewal or two may fail unharmed.
RENEWALS_PER_LEASE = 5

_log = get_logger("retention.locks")


class RunLock:
    """The locks one run holds; refresh them while working, release them at the end."""

    def __init__(self, engine: Engine, names: Sequence[str], lease: timedelta = LEASE) -> None:
        if lease <= timedelta(0):
            raise ValueError("a lock lease must be positive")
        self.engine = engine
        self.names = sorted(set(names))
        self.lease = lease
        self.host = socket.gethostname()  # shown to operators only: never an identity
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex}"
        self._stop = threading.Event()
        self._lost = False
        self._renewer: threading.Thread | None = None

    def acquire(self) -> None:
        """Take every lock or none; RunLocked names the lock and its live holder. Once
        taken, a background thread renews the lease until :meth:`release`."""
        try:
            with self.engine.begin() as conn:
                for name in self.names:
                    self._take(conn, name)
        except BaseException:
            self.release()  # a savepoint may have kept some: none means none
            raise
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="retention-lock", daemon=True)
        self._renewer.start()

    def _take(self, conn: sa.Connection, name: str) -> None:
        now = utcnow()
        row = {"name": name, "owner": self.owner, "host": self.host, "pid": self.pid,
               "acquired_at": now, "heartbeat_at": now,
               "lease_until": now + self.lease}  # fmt: skip
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
        if not lease_over(held["lease_until"], held["heartbeat_at"], now):
            raise RunLocked(name, held["owner"], as_utc(held["acquired_at"]))
        taken = conn.execute(
            sa.update(locks).where(locks.c.name == name, locks.c.owner == held["owner"]).values(row)
        )
        if taken.rowcount != 1:
            raise RunLocked(name, "another run taking over a stale lock", now)

    def refresh(self, conn: sa.Connection | None = None) -> None:
        """Renew the lease, so a long run is never mistaken for a dead one; in ``conn``'s
        transaction when given (the one that is about to write intents), else its own.

        Raises RunLocked if a lock was taken over meanwhile (this run was presumed dead):
        going on would let two runs work on the same records.
        """
        if conn is None:
            with self.engine.begin() as own:
                self.refresh(own)
            return
        if self._lost or not self._renewed(conn):
            self._lost = True
            raise RunLocked(", ".join(self.names), "a run that took this run's locks over",
                            utcnow())  # fmt: skip

    def _renewed(self, conn: sa.Connection) -> bool:
        now = utcnow()
        kept = conn.execute(
            sa.update(locks)
            .where(locks.c.owner == self.owner)
            .values(heartbeat_at=now, lease_until=now + self.lease)
        ).rowcount
        return kept == len(self.names)

    def _renew(self) -> None:
        """The background renewal: a failed one (the database away a moment) is retried at
        the next tick; a lock found taken over ends it, and the next :meth:`refresh` raises."""
        interval = self.lease.total_seconds() / RENEWALS_PER_LEASE
        while not self._stop.wait(interval):
            try:
                with self.engine.begin() as conn:
                    if not self._renewed(conn):
                        self._lost = True
                        return
            except sa_exc.SQLAlchemyError as exc:
                _log.warning("LockRenewalFailed", error=type(exc).__name__)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join()
            self._renewer = None
        with self.engine.begin() as conn:
            conn.execute(sa.delete(locks).where(locks.c.owner == self.owner))


def lease_over(lease_until: object, heartbeat_at: object, now: datetime) -> bool:
    """A lock is stale only when its lease has run out. A lock written before leases were
    recorded (no ``lease_until``) has the default lease from its last heartbeat."""
    if lease_until is not None:
        return now > as_utc(lease_until)
    return now - as_utc(heartbeat_at) > LEASE


@contextmanager
def holding(engine: Engine, names: Sequence[str], lease: timedelta = LEASE) -> Iterator[RunLock]:
    lock = RunLock(engine, names, lease)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
