"""Legal holds and processing restrictions: records that must not be touched.

A hold is scoped by any combination of register, policy, data subject and record key; it
covers a record when every scope it names matches. A subject is stored only as its keyed
reference, so the state database never holds a person's identifier. Released holds stay in
the table: releasing is recorded, not erased.

A run matches a hold's key text and subject reference exactly, while the source may compare
under a collation (``KK-1`` and ``kk-1``, or two spellings of one e-mail address, are one
value to it). So one hold can be stored as several rows, one per key or subject spelling the
source stores: the first row has the hold's id (``H-1a2b3c4d``), the others that id with a
suffix (``H-1a2b3c4d.2``), all with one reason, placer and last day. Releasing the hold's id
releases every row of it; releasing a suffixed id releases that spelling only.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from retention.errors import UsageError
from retention.pseudonym import Secret, key_json
from retention.state.database import as_utc, holds, utcnow


@dataclass(frozen=True)
class Hold:
    hold_id: str
    register: str | None
    policy: str | None
    subject_ref: str | None
    record_key: str | None
    reason: str
    placed_by: str
    placed_at: datetime
    until: date | None
    released_at: datetime | None
    released_by: str | None
    placed_identity: str | None = None
    """Who placed it (identity JSON, see :mod:`retention.decide.identity`); None for a hold
    placed before identities were recorded."""
    released_identity: str | None = None
    plan_id: str | None = None
    """The plan a reviewer excluded the record from: an exclusion is a record-scoped hold."""

    @property
    def placer(self) -> dict[str, Any] | None:
        return json.loads(self.placed_identity) if self.placed_identity else None

    @property
    def releaser(self) -> dict[str, Any] | None:
        return json.loads(self.released_identity) if self.released_identity else None

    @property
    def placed_label(self) -> str:
        """Who placed it as lists print it; a name only typed is marked unauthenticated."""
        return _label(self.placer, self.placed_by)

    @property
    def released_label(self) -> str | None:
        return None if self.released_by is None else _label(self.releaser, self.released_by)

    def active(self, on: date) -> bool:
        return self.released_at is None and (self.until is None or on <= self.until)

    def covers(self, register: str, policy: str, subject_ref: str | None, key: str) -> bool:
        return (
            (self.register is None or self.register == register)
            and (self.policy is None or self.policy == policy)
            and (self.subject_ref is None or self.subject_ref == subject_ref)
            and (self.record_key is None or self.record_key == key)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "hold_id": self.hold_id, "register": self.register, "policy": self.policy,
            "subject_ref": self.subject_ref,
            "record": json.loads(self.record_key) if self.record_key else None,
            "reason": self.reason, "placed_by": self.placed_by,
            "placed_at": self.placed_at.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "released_by": self.released_by, "placed_identity": self.placer,
            "released_identity": self.releaser, "plan_id": self.plan_id,
        }  # fmt: skip


def _label(identity: dict[str, Any] | None, name: str) -> str:
    from retention.decide.identity import UNAUTHENTICATED, Identity

    if identity is None:  # placed before identities were recorded: a name typed
        return f"{name} ({UNAUTHENTICATED})"
    return Identity.from_dict(identity).label


def _subject_ref(secret: Secret | None, subject: str | None) -> str | None:
    if not subject:
        return None
    if secret is None:
        raise UsageError(
            "a hold on a data subject needs RETENTION_SECRET (it stores only the "
            "subject's keyed reference)"
        )
    return secret.subject_ref(subject)


class HoldBook:
    """Holds in the state database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def place(
        self,
        *,
        reason: str,
        placed_by: str,
        secret: Secret | None,
        register: str | None = None,
        policy: str | None = None,
        subject: str | None = None,
        record: Sequence[str] | None = None,
        until: date | None = None,
    ) -> Hold:
        """Store a hold covering the subject and key exactly as given."""
        return self.place_all(
            reason=reason, placed_by=placed_by, secret=secret, register=register,
            policy=policy, subject=subject, record=record, until=until,
        )[0]  # fmt: skip

    def place_all(
        self,
        *,
        reason: str,
        placed_by: str,
        secret: Secret | None,
        register: str | None = None,
        policy: str | None = None,
        subject: str | None = None,
        record: Sequence[str] | None = None,
        until: date | None = None,
        spellings: Sequence[Any] = (),
        stored_keys: Sequence[Sequence[Any]] = (),
        placed_identity: Mapping[str, Any] | None = None,
        plan_id: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Hold]:
        """Store one hold; the first row returned is the hold itself.

        ``spellings`` are the values of the subject as the source stores them and
        ``stored_keys`` the record's key as the source stores it (found under the source's
        comparison): where given, the hold covers these instead of the text typed, one row
        per combination, so a run's exact match meets every record the source counted.
        ``placed_identity``: who placed it; ``plan_id``: the plan it excludes the record
        from; ``conn``: store it in the caller's transaction."""
        if not (register or policy or subject or record):
            raise UsageError(
                "a hold needs at least one scope: --register, --policy, --subject or --record"
            )
        if record and not policy:
            raise UsageError("--record needs --policy: a key is only unique within its table")
        if not reason.strip():
            raise UsageError("a hold needs a --reason")
        subject_refs: list[str | None] = [_subject_ref(secret, subject)]
        if subject and spellings:
            assert secret is not None  # _subject_ref refused a subject without one
            subject_refs = list(dict.fromkeys(secret.subject_ref(v) for v in spellings))
        record_keys: list[str | None] = [key_json(record) if record else None]
        if record and stored_keys:
            record_keys = list(dict.fromkeys(key_json(k) for k in stored_keys))
        base, placed_at = "H-" + secrets.token_hex(4), utcnow()
        identity = json.dumps(dict(placed_identity), sort_keys=True) if placed_identity else None
        made = [
            Hold(
                hold_id=base if n == 0 else f"{base}.{n + 1}",
                register=register,
                policy=policy,
                subject_ref=subject_ref,
                record_key=record_key,
                reason=reason.strip(),
                placed_by=placed_by,
                placed_at=placed_at,
                until=until,
                released_at=None,
                released_by=None,
                placed_identity=identity,
                plan_id=plan_id,
            )
            for n, (subject_ref, record_key) in enumerate(
                (s, k) for s in subject_refs for k in record_keys
            )
        ]
        rows = [{
            "hold_id": h.hold_id, "register": register, "policy": policy,
            "subject_ref": h.subject_ref, "record_key": h.record_key, "reason": h.reason,
            "placed_by": placed_by, "placed_at": placed_at, "until": until,
            "placed_identity": identity, "plan_id": plan_id,
        } for h in made]  # fmt: skip
        if conn is not None:
            conn.execute(holds.insert(), rows)
        else:
            with self.engine.begin() as own:
                own.execute(holds.insert(), rows)
        return made

    def release(
        self,
        hold_id: str,
        released_by: str,
        released_identity: Mapping[str, Any] | None = None,
        then: Callable[[sa.Connection], object] | None = None,
    ) -> Hold:
        """Release a hold: its id releases every row of it, a suffixed id one spelling.
        ``then`` runs in the same transaction once it is released (to journal it)."""
        named = holds.c.hold_id == hold_id
        if "." not in hold_id:
            named = sa.or_(named, holds.c.hold_id.startswith(hold_id + ".", autoescape=True))
        identity = (
            json.dumps(dict(released_identity), sort_keys=True) if released_identity else None
        )
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(holds)
                .where(named, holds.c.released_at.is_(None))
                .values(released_at=utcnow(), released_by=released_by,
                        released_identity=identity)
            )  # fmt: skip
            if result.rowcount < 1:
                raise UsageError(f"no active hold {hold_id!r}")
            if then is not None:
                then(conn)
        # A state database may compare ids without case (MariaDB): find the row it released.
        return next(h for h in self.all() if h.hold_id.lower() == hold_id.lower())

    def all(self) -> list[Hold]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(holds).order_by(holds.c.placed_at)).mappings().all()
        return [
            Hold(
                **{
                    **row,
                    "placed_at": as_utc(row["placed_at"]),
                    "released_at": as_utc(row["released_at"]) if row["released_at"] else None,
                }
            )
            for row in rows
        ]

    def active(self, on: date) -> list[Hold]:
        return [h for h in self.all() if h.active(on)]


class HoldIndex:
    """The holds in force on one day, for one policy, checked once per record."""

    def __init__(self, active: Sequence[Hold], register: str, policy: str) -> None:
        self.register, self.policy = register, policy
        self._holds = [
            h for h in active
            if h.register in (None, register) and h.policy in (None, policy)
        ]  # fmt: skip
        self.needs_subject = any(h.subject_ref for h in self._holds)

    def __bool__(self) -> bool:
        """Whether any hold is in force for the policy at all."""
        return bool(self._holds)

    def find(self, subject_ref: str | None, key: str) -> str | None:
        """The id of the first hold covering this record, or None."""
        for hold in self._holds:
            if hold.covers(self.register, self.policy, subject_ref, key):
                return hold.hold_id
        return None
