"""A certificate as a Merkle leaf and the batch header it points at.

What differs from record to record (:data:`LEAF_KEYS`: its sequence number, id, record and key
references, outcome, dates and ``replaces``) is the leaf; every other key of a certificate is the
same for a whole batch (register, policy, action, legal basis, run, plan, approver, archive
package, and whatever key a later version adds) and goes into a *header* stored once, which
the leaf names by its SHA-256. The split is by name, not by a list of header keys, so a key
added to certificates later lands in the header without a change of format.

A certificate as users see it is the leaf joined with its header (:func:`join`): the same
keys as before, with ``header`` (the header's hash) and ``hash`` (the leaf hash of RFC 9162)
in place of the chained ``prev_hash``/``hash``. Both encodings are canonical JSON
(:func:`retention.evidence.certificate.canonical`), so a verifier needs nothing but a JSON
parser and SHA-256; docs/performance.md compares them with a fixed binary layout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from retention.evidence import merkle
from retention.evidence.certificate import canonical

#: Keys that vary per record: the leaf. Everything else a certificate holds is its header.
LEAF_KEYS = frozenset({
    "seq", "certificate_id", "record_ref", "fingerprint", "reason", "replaces",
    "trigger_date", "expires_on", "executed_at", "verified",
})  # fmt: skip
#: What the joined certificate adds: the header's hash and the leaf's hash.
HEADER = "header"
HASH = "hash"
#: Keys no header may hold: they are the leaf's, or computed from it.
_NOT_HEADER = LEAF_KEYS | {HEADER, HASH, "prev_hash"}


def split(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(leaf keys, header keys) of a certificate body."""
    leaf: dict[str, Any] = {}
    header: dict[str, Any] = {}
    for key, value in body.items():
        if key in _NOT_HEADER:
            leaf[key] = value
        else:
            header[key] = value
    leaf.pop(HASH, None)
    leaf.pop("prev_hash", None)
    return leaf, header


def header_hash(header: Mapping[str, Any]) -> str:
    """The hex SHA-256 of the header's canonical JSON: what a leaf names it by."""
    return hashlib.sha256(canonical(header)).hexdigest()


def encode(leaf: Mapping[str, Any], header: str) -> bytes:
    """The leaf's canonical bytes: the per-record keys and the header's hash."""
    return canonical({**leaf, HEADER: header})


def join(leaf_bytes: bytes, leaf: Mapping[str, Any], header: Mapping[str, Any]) -> dict[str, Any]:
    """The certificate users read: header keys, then the leaf's, then its leaf hash."""
    return {**header, **leaf, HASH: merkle.leaf_hash(leaf_bytes).hex()}


def is_leaf_certificate(cert: Mapping[str, Any]) -> bool:
    """Whether ``cert`` is a joined leaf (not a certificate of the chained ledger before 0009)."""
    return HEADER in cert and "prev_hash" not in cert


def reassemble(cert: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """A joined certificate back into (leaf bytes, header): what an export verifier hashes."""
    leaf = {k: v for k, v in cert.items() if k in LEAF_KEYS}
    header = {k: v for k, v in cert.items() if k not in _NOT_HEADER}
    return encode(leaf, str(cert.get(HEADER))), header


def faults(cert: Mapping[str, Any]) -> list[str]:
    """What does not hold in a joined certificate: its header against the header hash it
    names, its leaf against its leaf hash."""
    leaf_bytes, header = reassemble(cert)
    found = []
    if header_hash(header) != cert.get(HEADER):
        found.append("its batch header does not match the header hash its leaf names (altered)")
    if merkle.leaf_hash(leaf_bytes).hex() != cert.get(HASH):
        found.append("its leaf does not match its leaf hash (altered)")
    return found
