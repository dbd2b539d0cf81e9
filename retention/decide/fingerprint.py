"""What a decision reads, and the keyed fingerprint that shows a record unchanged since.

A plan stores each record's fingerprint; approval compares it when the plan runs, and ``done``
builds its own from the same columns. It lives below all three so that none of them imports
another for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from retention.catalog.model import Policy
from retention.connectors.base import Record
from retention.evidence.certificate import canonical
from retention.pseudonym import Secret, key_text


def decision_columns(policy: Policy) -> tuple[str, ...]:
    """The columns besides the trigger that decide a due record's fate."""
    attached = policy.attachments.column if policy.attachments else None
    read = (policy.subject, *policy.secret, *(u.column for u in policy.unless), attached)
    return tuple(dict.fromkeys(c for c in read if c))


def record_fingerprint(secret: Secret, columns: Sequence[str], record: Record) -> str:
    """HMAC of a record's trigger date and decision columns (``decision_columns`` of its
    policy, worked out once by the caller), in canonical text form."""
    values = record.values
    body = {"trigger": _canonical(record.trigger),
            "values": {c: _canonical(values.get(c)) for c in columns}}  # fmt: skip
    return secret.fingerprint_of(canonical(body))


def _canonical(value: Any) -> str | None:
    return None if value is None else key_text(value)
