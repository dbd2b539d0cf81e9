"""The decision journal: every approval, rejection, exclusion and hold, attributed and signed.

A certificate says what was disposed of; the journal says who decided it might be. Each
entry names its kind, the plan or hold it is about, the identity that acted (authenticated
or not, see :mod:`retention.decide.identity`) and what they said, and is

* chained: it carries its sequence number and the hash of the entry before it, so an entry
  removed, inserted or reordered breaks the chain at a named place;
* hashed: the SHA-256 of its canonical JSON, so a changed byte shows;
* signed with the installation's Ed25519 key (the key pinned in ``signing_keys`` or one its
  signed rotations reach), so a row rewritten with a fresh hash still fails.

Appends are serialised through the single ``decisions_head`` row, as certificates are
through ``ledger_head``; the head's last sequence number and hash show a removed tail.
``retention verify`` checks all of it, and exports carry the entries of the plans whose
certificates they hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Engine

from retention.evidence import keyring, signing
from retention.evidence.certificate import canonical
from retention.state.database import GENESIS_HASH, as_utc, decisions, decisions_head, utcnow

Kind = Literal["approval", "rejection", "exclusion", "hold-placed", "hold-released"]
KINDS: tuple[Kind, ...] = ("approval", "rejection", "exclusion", "hold-placed", "hold-released")


@dataclass(frozen=True)
class Entry:
    """One journal entry as stored: ``body`` is what the hash and the signature cover."""

    seq: int
    kind: str
    plan_id: str | None
    hold_id: str | None
    at: datetime
    body: dict[str, Any]
    hash: str
    key_id: str
    signature: str

    @property
    def actor(self) -> dict[str, Any]:
        found = self.body.get("actor")
        return found if isinstance(found, dict) else {}

    def exported(self) -> dict[str, Any]:
        """The entry as an export carries it: the signed body, its hash and signature."""
        return {**self.body, "hash": self.hash, "key_id": self.key_id,
                "signature": self.signature}  # fmt: skip


def entry_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(dict(body))).hexdigest()


def lock(conn: sa.Connection) -> None:
    """Take the journal's head row in the caller's transaction before anything else: a
    decision that writes other rows first (an exclusion: holds, the plan) would otherwise
    hold those while it waits for the head, which an approval holds while it waits for the
    plan's row (a deadlock), and on MariaDB would read from a snapshot taken before an
    approval it then misses."""
    conn.execute(
        sa.select(decisions_head.c.last_seq).where(decisions_head.c.id == 1).with_for_update()
    ).first()


def append(
    conn: sa.Connection,
    key: Ed25519PrivateKey,
    kind: Kind,
    actor: Mapping[str, Any],
    *,
    plan_id: str | None = None,
    hold_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Entry:
    """Append one entry in the caller's transaction, which it serialises on the head row:
    whatever the caller decided from what it read after this call commits with the entry,
    or neither does. ``details`` must hold no personal value (keys, comments, reasons)."""
    if kind not in KINDS:
        raise ValueError(f"unknown decision kind {kind!r}")
    head = conn.execute(
        sa.select(decisions_head.c.last_seq, decisions_head.c.last_hash)
        .where(decisions_head.c.id == 1)
        .with_for_update()
    ).first()
    if head is None:  # a journal no revision seeded (never after 0010): start it
        conn.execute(decisions_head.insert().values(id=1, last_seq=0, last_hash=GENESIS_HASH))
        last_seq, last_hash = 0, GENESIS_HASH
    else:
        last_seq, last_hash = int(head.last_seq), str(head.last_hash)
    at = utcnow()
    key_id = signing.key_id(key.public_key())
    body: dict[str, Any] = {
        "seq": last_seq + 1, "prev": last_hash, "kind": kind, "at": at.isoformat(),
        "actor": dict(actor), "plan_id": plan_id, "hold_id": hold_id, "key_id": key_id,
        **(dict(details) if details else {}),
    }  # fmt: skip
    message = canonical(body)
    digest = hashlib.sha256(message).hexdigest()
    signature = signing.sign(key, message)
    conn.execute(decisions.insert().values(
        seq=body["seq"], kind=kind, plan_id=plan_id, hold_id=hold_id, at=at,
        entry=message.decode("utf-8"), hash=digest, key_id=key_id, signature=signature,
    ))  # fmt: skip
    conn.execute(
        sa.update(decisions_head)
        .where(decisions_head.c.id == 1)
        .values(last_seq=body["seq"], last_hash=digest)
    )
    return Entry(body["seq"], kind, plan_id, hold_id, at, body, digest, key_id, signature)


def _entry(row: Any) -> Entry:
    try:
        body = json.loads(row.entry)
    except (TypeError, ValueError):
        body = {}
    return Entry(
        seq=int(row.seq), kind=str(row.kind), plan_id=row.plan_id, hold_id=row.hold_id,
        at=as_utc(row.at), body=body if isinstance(body, dict) else {}, hash=str(row.hash),
        key_id=str(row.key_id), signature=str(row.signature),
    )  # fmt: skip


def for_plans(conn: sa.Connection, plan_ids: Sequence[str]) -> dict[str, list[Entry]]:
    """The entries about each plan, oldest first."""
    found: dict[str, list[Entry]] = {p: [] for p in plan_ids}
    ids = list(found)
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(decisions)
            .where(decisions.c.plan_id.in_(ids[start : start + 500]))
            .order_by(decisions.c.seq)
        )
        for row in rows:
            found[row.plan_id].append(_entry(row))
    return found


def entries(engine: Engine) -> list[Entry]:
    """The whole journal, oldest first."""
    with engine.connect() as conn:
        return [_entry(r) for r in conn.execute(sa.select(decisions).order_by(decisions.c.seq))]


def describe(entry: Entry) -> str:
    """How a fault names an entry: its number, kind and what it is about."""
    about = f" of plan {entry.plan_id}" if entry.plan_id else ""
    about += f" on hold {entry.hold_id}" if entry.hold_id and entry.kind != "exclusion" else ""
    return f"decision journal entry {entry.seq} ({entry.kind}{about})"


def entry_faults(entry: Entry, chain: keyring.KeyChain) -> list[str]:
    """What is wrong with one entry on its own: content, hash, columns, signature."""
    name = describe(entry)
    body = entry.body
    if not body:
        return [f"{name}: its content is not a JSON object (altered)"]
    faults = []
    if entry_hash(body) != entry.hash:
        faults.append(f"{name}: its content does not match its hash (altered)")
    columns = {"seq": entry.seq, "kind": entry.kind, "plan_id": entry.plan_id,
               "hold_id": entry.hold_id, "key_id": entry.key_id}  # fmt: skip
    differing = sorted(k for k, v in columns.items() if body.get(k) != v)
    if differing:
        faults.append(f"{name}: its columns {', '.join(differing)} differ from its signed content")
    signer = chain.find(entry.key_id)
    if signer is None:
        faults.append(f"{name}: signed by key {entry.key_id}, which the pinned key chain does "
                      "not reach")  # fmt: skip
    elif not signing.verify(signer.public_key, canonical(body), entry.signature):
        faults.append(f"{name}: its signature does not verify with key {entry.key_id}")
    return faults


@dataclass
class JournalReport:
    """What ``retention verify`` found in the decision journal."""

    entries: int = 0
    faults: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    unauthenticated: int = 0
    """Entries whose actor was not authenticated (typed at a command line)."""


def verify(engine: Engine, chain: keyring.KeyChain | None = None) -> JournalReport:
    """Check every entry (content, hash, signature by a trusted key), the chain from entry
    to entry (nothing removed, inserted or reordered) and the head (nothing cut off the end)."""
    chain = chain if chain is not None else keyring.load(engine)
    report = JournalReport()
    expected_seq, previous = 1, GENESIS_HASH
    for entry in entries(engine):
        report.entries += 1
        report.kinds[entry.kind] = report.kinds.get(entry.kind, 0) + 1
        report.unauthenticated += not entry.actor.get("authenticated")
        report.faults.extend(entry_faults(entry, chain))
        name = describe(entry)
        if entry.seq != expected_seq:
            missing = (
                f"entry {expected_seq}" if entry.seq == expected_seq + 1
                else f"entries {expected_seq} to {entry.seq - 1}"
            )  # fmt: skip
            report.faults.append(
                f"decision journal: {missing} missing before {name} (removed)"
                if entry.seq > expected_seq
                else f"{name}: out of sequence after entry {expected_seq - 1}"
            )
        elif entry.body.get("prev") != previous:
            report.faults.append(
                f"{name}: does not follow entry {entry.seq - 1} (its previous hash differs: an "
                "entry before it was altered or replaced)"
            )
        expected_seq, previous = entry.seq + 1, entry.hash
    with engine.connect() as conn:
        head = conn.execute(
            sa.select(decisions_head.c.last_seq, decisions_head.c.last_hash)
        ).first()
    head_seq = int(head.last_seq) if head is not None else 0
    if head_seq != expected_seq - 1 or (head is not None and head_seq
                                        and head.last_hash != previous):  # fmt: skip
        report.faults.append(
            f"decision journal: its head records entry {head_seq} but the journal ends at "
            f"entry {expected_seq - 1} (entries removed or added outside the engine)"
        )
    return report


def verify_exported(
    exported: Iterable[Any], chain: keyring.KeyChain | None, fallback: Ed25519PublicKey
) -> list[str]:
    """Faults of the journal entries an export's manifest carries: each entry's hash and
    signature (by a key of the export's pinned chain, or ``fallback`` without one)."""
    faults = []
    for item in exported:
        if not isinstance(item, dict):
            faults.append("manifest: a decision journal entry that is not an object")
            continue
        body = {k: v for k, v in item.items() if k not in ("hash", "signature")}
        name = f"decision journal entry {body.get('seq')} ({body.get('kind')})"
        if entry_hash(body) != item.get("hash"):
            faults.append(f"manifest: {name}: its content does not match its hash (altered)")
        signer = chain.find(body.get("key_id")) if chain is not None and chain.keys else None
        key = signer.public_key if signer is not None else fallback
        if not signing.verify(key, canonical(body), str(item.get("signature", ""))):
            faults.append(f"manifest: {name}: its signature does not verify")
    return faults


def sign_key_ready(engine: Engine, key: Ed25519PrivateKey) -> None:
    """Refuse, before anything is decided, a key that is not the installation's current one
    (pinning it first where nothing is pinned): an entry it signed would not verify."""
    keyring.require_current(engine, key)
