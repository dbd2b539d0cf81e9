"""The pinned signing key and its signed rotations, kept in the state database.

Anyone who can write to the state database could otherwise re-sign every checkpoint with a
key pair of their own and hand ``verify`` the matching public key. So the key that signs is
*pinned*: its id (sha256 of the public key, :func:`retention.evidence.signing.key_id`) is
recorded at ``retention init``, or on first use by a ledger made before pinning. A new key is
trusted only through a *rotation*: a statement naming the new key, signed by the old private
key and by the new one (``retention key rotate``). ``verify`` walks the chain from the pinned
key and accepts a checkpoint only from a key it reaches, each key for the ledger sequence
numbers after its rotation; a row added without the old key's signature reaches nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from retention.errors import LedgerError
from retention.evidence import signing
from retention.evidence.certificate import canonical
from retention.logs import get_logger
from retention.state.database import ledger_head, signing_keys, utcnow

_log = get_logger("retention")


@dataclass(frozen=True)
class TrustedKey:
    """A key the chain reaches, and the ledger sequence numbers it may sign from."""

    key_id: str
    public_key: Ed25519PublicKey
    from_seq: int
    """Checkpoints ending after this seq are signed by this key or a later one: the ledger
    head when the key was pinned or rotated in (0 for the pinned key)."""
    statement: dict[str, Any]
    signature: str
    previous_signature: str | None


@dataclass
class KeyChain:
    """The pinned key and the keys reached from it by signed rotations, oldest first."""

    keys: list[TrustedKey] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    pinned_at_seq: int = 0
    """The ledger head when the key was pinned: certificates up to it predate pinning."""

    @property
    def pinned(self) -> str | None:
        return self.keys[0].key_id if self.keys else None

    @property
    def current(self) -> str | None:
        return self.keys[-1].key_id if self.keys else None

    def find(self, key_id: str | None) -> TrustedKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    def signer_for(self, last_seq: int) -> TrustedKey | None:
        """The newest key whose rotation came before a checkpoint ending at ``last_seq``."""
        found = None
        for key in self.keys:
            if key.from_seq < last_seq or key is self.keys[0]:
                found = key
        return found

    def exported(self) -> list[dict[str, Any]]:
        """The chain as an export's manifest carries it, for verification offline."""
        return [
            {"statement": k.statement, "signature": k.signature,
             "previous_signature": k.previous_signature}
            for k in self.keys
        ]  # fmt: skip


def load(engine: Engine) -> KeyChain:
    """Read the chain from the state database and check every link's signatures."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(signing_keys).order_by(signing_keys.c.made_at)).all()
    return follow(
        [
            {
                "statement": json.loads(r.statement),
                "signature": r.signature,
                "previous_signature": r.previous_signature,
            }
            for r in rows
        ]
    )


def follow(entries: list[dict[str, Any]]) -> KeyChain:
    """Walk pin → rotation → rotation; an entry no link reaches is a fault, not a key."""
    chain = KeyChain()
    by_previous: dict[str | None, list[dict[str, Any]]] = {}
    for entry in entries:
        statement = entry.get("statement")
        if not isinstance(statement, dict):
            chain.faults.append("a signing key entry without a statement")
            continue
        by_previous.setdefault(statement.get("previous"), []).append(entry)
    pins = by_previous.pop(None, [])
    if not pins:
        if entries:
            chain.faults.append("signing keys are recorded but none of them is the pinned key")
        return chain
    if len(pins) > 1:
        chain.faults.append(
            f"{len(pins)} keys claim to be the pinned key: "
            + ", ".join(str(p["statement"].get("key_id")) for p in pins)
        )
        return chain
    link: dict[str, Any] | None = pins[0]
    previous: TrustedKey | None = None
    while link is not None:
        key = _checked(link, previous, chain.faults)
        if key is None:
            break
        chain.keys.append(key)
        previous = key
        following = by_previous.pop(key.key_id, [])
        if len(following) > 1:
            chain.faults.append(f"key {key.key_id} was rotated to {len(following)} keys at once")
            break
        link = following[0] if following else None
    for stray in by_previous.values():
        for entry in stray:
            chain.faults.append(
                f"key {entry['statement'].get('key_id')} replaces key "
                f"{entry['statement'].get('previous')} without a rotation the pinned key "
                "reaches (an unsigned replacement)"
            )
    if chain.keys:
        chain.pinned_at_seq = int(chain.keys[0].statement.get("ledger_seq") or 0)
    return chain


def _checked(
    entry: dict[str, Any], previous: TrustedKey | None, faults: list[str]
) -> TrustedKey | None:
    statement = entry["statement"]
    named = statement.get("key_id")
    try:
        public = serialization.load_pem_public_key(str(statement.get("public_key")).encode())
    except ValueError:
        faults.append(f"key {named}: its public key cannot be read")
        return None
    if not isinstance(public, Ed25519PublicKey) or signing.key_id(public) != named:
        faults.append(f"key {named}: the public key recorded is not the key of that id")
        return None
    message = canonical(statement)
    if not signing.verify(public, message, str(entry.get("signature") or "")):
        faults.append(f"key {named}: its statement is not signed by that key")
        return None
    if previous is not None and not signing.verify(
        previous.public_key, message, str(entry.get("previous_signature") or "")
    ):
        faults.append(
            f"key {named} replaces key {previous.key_id} without that key's signature "
            "(an unsigned replacement)"
        )
        return None
    return TrustedKey(
        key_id=str(named), public_key=public,
        from_seq=0 if previous is None else int(statement.get("ledger_seq") or 0),
        statement=statement, signature=str(entry["signature"]),
        previous_signature=entry.get("previous_signature"),
    )  # fmt: skip


def pin(engine: Engine, key: Ed25519PrivateKey) -> KeyChain:
    """Pin ``key`` unless a key is pinned already; return the chain either way.

    Called by ``retention init`` and, for a ledger made before pinning, by the first
    checkpoint, export or verification that has the private key at hand."""
    chain = load(engine)
    if chain.keys or chain.faults:
        return chain
    public = key.public_key()
    with engine.connect() as conn:
        head = conn.scalar(sa.select(ledger_head.c.last_seq).where(ledger_head.c.id == 1)) or 0
    statement = {
        "kind": "pin", "key_id": signing.key_id(public),
        "public_key": signing.public_pem(public), "previous": None, "ledger_seq": int(head),
        "made_at": utcnow().isoformat(),
    }  # fmt: skip
    try:
        with engine.begin() as conn:
            conn.execute(signing_keys.insert().values(
                key_id=statement["key_id"], public_key=statement["public_key"], previous=None,
                statement=canonical(statement).decode("utf-8"),
                signature=signing.sign(key, canonical(statement)), previous_signature=None,
                made_at=utcnow(),
            ))  # fmt: skip
    except sa_exc.IntegrityError:
        return load(engine)  # another process pinned it at the same moment
    _log.info("SigningKeyPinned", key_id=statement["key_id"], ledger_seq=statement["ledger_seq"])
    return load(engine)


def require_current(engine: Engine, key: Ed25519PrivateKey) -> KeyChain:
    """The chain, provided ``key`` is its newest key: nothing is signed by another.

    Pins ``key`` if nothing is pinned yet (a ledger made before pinning)."""
    chain = pin(engine, key)
    if chain.faults:
        raise LedgerError(
            "the signing keys recorded in the state database do not verify, so nothing is "
            "signed:\n  " + "\n  ".join(chain.faults)
        )
    kid = signing.key_id(key.public_key())
    if kid != chain.current:
        raise LedgerError(
            f"the signing key in use (key id {kid}) is not the pinned key {chain.pinned}"
            + (f" nor its current rotation {chain.current}" if chain.current != chain.pinned
               else "")
            + ": a key is changed only with `retention key rotate`, signed by the old key"
        )  # fmt: skip
    return chain


def rotate(engine: Engine, old: Ed25519PrivateKey, new: Ed25519PrivateKey) -> dict[str, Any]:
    """Record ``new`` as the successor of ``old`` (the current key), signed by both."""
    chain = require_current(engine, old)
    public = new.public_key()
    with engine.begin() as conn:
        head = conn.scalar(sa.select(ledger_head.c.last_seq).where(ledger_head.c.id == 1)) or 0
        statement = {
            "kind": "rotation", "key_id": signing.key_id(public),
            "public_key": signing.public_pem(public), "previous": chain.current,
            "ledger_seq": int(head), "made_at": utcnow().isoformat(),
        }  # fmt: skip
        message = canonical(statement)
        conn.execute(signing_keys.insert().values(
            key_id=statement["key_id"], public_key=statement["public_key"],
            previous=chain.current, statement=message.decode("utf-8"),
            signature=signing.sign(new, message), previous_signature=signing.sign(old, message),
            made_at=utcnow(),
        ))  # fmt: skip
    _log.warning("SigningKeyRotated", key_id=statement["key_id"], previous=chain.current,
                 ledger_seq=statement["ledger_seq"])  # fmt: skip
    return statement
