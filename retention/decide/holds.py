"""Legal holds and processing restrictions: records that must not be touched.

A hold is scoped by any combination of register, policy, data subject and record key; it
covers a record when every scope it names matches. A subject is stored only as its keyed
reference, so the state database never holds a person's identifier. Released holds stay in
the table: releasing is recorded, not erased.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
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
            "released_by": self.released_by,
        }  # fmt: skip


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
        if not (register or policy or subject or record):
            raise UsageError(
                "a hold needs at least one scope: --register, --policy, --subject or --record"
            )
        if record and not policy:
            raise UsageError("--record needs --policy: a key is only unique within its table")
        if not reason.strip():
            raise UsageError("a hold needs a --reason")
        hold = Hold(
            hold_id="H-" + secrets.token_hex(4),
            register=register,
            policy=policy,
            subject_ref=_subject_ref(secret, subject),
            record_key=key_json(record) if record else None,
            reason=reason.strip(),
            placed_by=placed_by,
            placed_at=utcnow(),
            until=until,
            released_at=None,
            released_by=None,
        )
        with self.engine.begin() as conn:
            conn.execute(holds.insert().values(
                hold_id=hold.hold_id, register=register, policy=policy,
                subject_ref=hold.subject_ref, record_key=hold.record_key, reason=hold.reason,
                placed_by=placed_by, placed_at=hold.placed_at, until=until,
            ))  # fmt: skip
        return hold

    def release(self, hold_id: str, released_by: str) -> Hold:
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(holds)
                .where(holds.c.hold_id == hold_id, holds.c.released_at.is_(None))
                .values(released_at=utcnow(), released_by=released_by)
            )
            if result.rowcount != 1:
                raise UsageError(f"no active hold {hold_id!r}")
        return next(h for h in self.all() if h.hold_id == hold_id)

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
