"""Deletion certificates: their canonical form and the hash that chains them.

A certificate is a flat JSON object (SPEC §7). Its ``hash`` is the sha256 of the canonical
JSON of every other field — sorted keys, no insignificant white space, UTF-8 — and that
includes ``prev_hash``, so changing any certificate breaks every hash after it. The same
functions hash certificates in the ledger and in exports, so an export can be checked on a
machine that has nothing but the file and the public key.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

#: Fields every certificate carries, in the order SPEC §7 lists them.
FIELDS = (
    "certificate_id", "seq", "run_id", "plan_id", "approved_by", "register", "policy",
    "policy_sha256", "record_ref", "action", "reason", "fields", "archive", "trigger_date",
    "expires_on", "executed_at", "verified", "legal_basis", "prev_hash", "hash",
)  # fmt: skip

#: Fields only some certificates carry, checked when present. Every certificate written
#: before a field was added lacks it, so it can never join ``FIELDS`` (whose absence is a
#: fault) without making older ledgers and exports fail verification.
#: ``replaces``: the certificate a replay after a restore from a backup disposed of again, or
#: that of a record disposed of by another action before its policy's rule changed.
#: ``fingerprint``: a keyed fingerprint of the record as it was disposed of (retention/done.py).
OPTIONAL = ("approvals", "replaces", "fingerprint")

#: Reasons whose records may be disposed of before their ``expires_on``: an erasure request
#: disposes of a person's records due or not, and a replay disposes again of a record that was
#: already certified (its first certificate is the one checked).
EARLY_REASONS = frozenset({"erasure-request", "replay"})

#: The latest UTC offset in use (Kiribati, UTC+14): the calendar day that has begun somewhere
#: on Earth at a moment is at most this far ahead of the UTC day.
_LATEST_OFFSET = timedelta(hours=14)

#: Past-tense action names used in certificates.
ACTION_DONE = {"anonymise": "anonymised", "delete": "deleted", "archive": "archived"}


def new_certificate_id() -> str:
    """A version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Ids that grow with time are appended at the end of the ledger's unique index instead of
    landing on a random page of it: three times faster inserts at a few hundred thousand
    certificates on SQLite. They say no more than ``executed_at`` beside them does.

    One is made per certificate, so the text is put together from hex digits directly (one
    ``os.urandom`` call, no big-integer arithmetic, no ``uuid.UUID``): five times faster.
    """
    millis = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    rand = os.urandom(10).hex()  # 80 bits: 12 + 2 + 12 + 48 used, each digit at most once
    # Version digit 7; the variant group starts with 10xx (8, 9, a or b) then two random bits.
    return (
        f"{millis[:8]}-{millis[8:]}-7{rand[:3]}-{_VARIANT[int(rand[3], 16) & 3]}{rand[4:7]}-"
        f"{rand[7:19]}"
    )


_VARIANT = "89ab"


def canonical(value: Any) -> bytes:
    """The one byte form that is hashed and signed: sorted keys, no insignificant white
    space, UTF-8 — byte for byte what ``json.dumps(value, sort_keys=True, separators=(",",
    ":"), ensure_ascii=False)`` gives for the strings, integers, booleans, nulls, lists and
    objects certificates, checkpoints and manifests are made of (a test pins it). orjson
    writes it several times faster, which matters at one certificate per record. Numbers
    with a fraction never occur in what is signed: the two serialisers spell some of them
    differently (``1e+16`` and ``1e16``).
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, a str subclass: the reference form
        return _reference(value)


def _reference(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def certificate_hash(body: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of every field except ``hash`` itself."""
    return hashlib.sha256(canonical({k: v for k, v in body.items() if k != "hash"})).hexdigest()


def seal(body: Mapping[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    """Place ``body`` in the chain: give it its sequence number, predecessor and hash."""
    sealed = {**body, "seq": seq, "prev_hash": prev_hash}
    sealed["hash"] = certificate_hash(sealed)
    return sealed


class ChainVerifier:
    """Checks certificates one at a time, so a ledger of millions streams in flat memory.

    ``start_hash`` is the hash the first certificate must follow (None: don't check it, as
    for an export that starts mid-ledger). Faults name the certificate id and its seq.
    """

    def __init__(self, start_hash: str | None, *, gaps: bool = False) -> None:
        self.gaps = gaps  # a filtered export skips seq numbers: link only consecutive ones
        self.faults: list[str] = []
        self.count = 0
        self.last_hash = start_hash
        self.last_seq: int | None = None
        self.first_hash: str | None = None
        self.first_seq: int | None = None

    def feed(self, cert: Mapping[str, Any]) -> None:
        name = f"certificate {cert.get('certificate_id')} (seq {cert.get('seq')})"
        missing = [f for f in FIELDS if f not in cert]
        if missing:
            self.faults.append(f"{name}: missing fields {', '.join(missing)}")
        self.faults.extend(f"{name}: {fault}" for fault in optional_faults(cert))
        if cert.get("hash") != certificate_hash(cert):
            self.faults.append(f"{name}: its content does not match its hash (altered)")
        seq = cert.get("seq")
        adjacent = not self.gaps or (self.last_seq is not None and seq == self.last_seq + 1)
        if adjacent and self.last_hash is not None and cert.get("prev_hash") != self.last_hash:
            self.faults.append(f"{name}: prev_hash does not match the certificate before it")
        if not isinstance(seq, int) or (self.last_seq is not None and seq <= self.last_seq):
            self.faults.append(f"{name}: out of sequence")
        elif not self.gaps and self.last_seq is not None and seq != self.last_seq + 1:
            self.faults.append(
                f"{name}: sequence jumps from {self.last_seq} (certificates missing)"
            )
        self.count += 1
        if self.first_hash is None:
            self.first_hash, self.first_seq = cert.get("hash"), seq
        self.last_hash = cert.get("hash")
        self.last_seq = seq if isinstance(seq, int) else None


def optional_faults(cert: Mapping[str, Any]) -> list[str]:
    """What is wrong with the optional fields ``cert`` carries (nothing when it has none)."""
    faults = []
    if "replaces" in cert:
        replaces = cert["replaces"]
        if not isinstance(replaces, str) or not _is_uuid(replaces):
            faults.append("replaces does not name a certificate")
        if cert.get("reason") != "replay":
            faults.append("replaces another certificate, but its reason is not replay")
    return faults


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def disposed_early(cert: Mapping[str, Any]) -> str | None:
    """A fault when ``cert`` says its record was disposed of before the day it fell due.

    The execution day is the latest calendar day anywhere on Earth at ``executed_at`` (UTC+14),
    so the check needs nothing but the certificate — an export verifies on any machine — and
    never mistakes a run in any catalog or job time zone for an early one; a disposal even
    one day early is caught. Erasure requests and replays (:data:`EARLY_REASONS`) are exempt.
    Unreadable dates are left to the field and hash checks.
    """
    if cert.get("reason") in EARLY_REASONS:
        return None
    try:
        expires = date.fromisoformat(str(cert["expires_on"]))
        moment = datetime.fromisoformat(str(cert["executed_at"]))
    except (KeyError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    latest_day = (moment.astimezone(UTC) + _LATEST_OFFSET).date()
    if expires <= latest_day:
        return None
    return (
        f"certificate {cert.get('certificate_id')} (seq {cert.get('seq')}): its record was "
        f"disposed of on {latest_day} at the latest, before it fell due (expires_on "
        f"{expires}) and not by an erasure request"
    )
