"""A proof that one record's certificate is in the ledger: checked with nothing but the key.

``retention certificates prove`` writes a JSON file (format :data:`FORMAT`, docs/exports.md)
holding, for each certificate proven, its leaf exactly as the ledger hashed it, its batch header
and its RFC 9162 inclusion path to a signed checkpoint (a C2SP signed note), plus the key
chain that signed it. It names the record only by its keyed reference, so a records manager
can hand it to the person it concerns. :func:`verify_proof` re-hashes the leaf and its header,
walks the path to the signed root and checks the note's signature: every fault says which part
failed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.engine import Engine

from retention.errors import LedgerError, UsageError
from retention.evidence import keyring, leaf, merkle, note, signing
from retention.evidence.certificate import certificate_hash
from retention.evidence.ledger import NODE_LEVEL
from retention.state.database import (
    batch_headers,
    certificates,
    checkpoints,
    ledger_nodes,
    utcnow,
)

FORMAT = "retention-inclusion-proof/1"
_PAGE = 50_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def leaf_hashes(engine: Engine, size: int) -> Iterator[bytes]:
    """The leaf hashes of the first ``size`` leaves, in order, streamed: a leaf's stored hash,
    or for a certificate of the chained ledger the hash of its stored body."""
    c = certificates.c
    last = 0
    while last < size:
        query = (
            sa.select(c.seq, c.hash, sa.case((c.header.is_(None), c.body), else_=None))
            .where(c.seq > last, c.seq <= size)
            .order_by(c.seq)
            .limit(_PAGE)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        for _seq, hashed, body in rows:
            if body is None:
                yield bytes.fromhex(hashed)
            else:
                yield merkle.leaf_hash(body.encode("utf-8"))
        last = rows[-1][0]


def make_proof(engine: Engine, seqs: Sequence[int]) -> dict[str, Any]:
    """The proof of the certificates at ``seqs`` under the latest signed checkpoint.

    Raises LedgerError for a certificate no checkpoint signs yet (the next run's will)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(checkpoints.c.body)).all()
        heads = [json.loads(r.body) for r in rows]
        heads = [h for h in heads if "tree_size" in h]
        if not heads:
            raise LedgerError("no checkpoint signs a Merkle tree yet: the next run signs one")
        head = max(heads, key=lambda h: int(h["tree_size"]))
        size = int(head["tree_size"])
        late = [s for s in seqs if s > size]
        if late:
            raise LedgerError(
                f"certificate seq {late[0]} is after the last signed checkpoint (tree size "
                f"{size}): the next run's checkpoint signs it; prove it after that run"
            )
        c = certificates.c
        found = conn.execute(
            sa.select(c.seq, c.body, c.header).where(c.seq.in_(list(seqs))).order_by(c.seq)
        ).all()
        hashes = sorted({r.header for r in found if r.header is not None})
        headers = {
            h: json.loads(body)
            for h, body in conn.execute(
                sa.select(batch_headers.c.hash, batch_headers.c.body).where(
                    batch_headers.c.hash.in_(hashes)
                )
            )
        }
    chain = keyring.load(engine)
    root = note.parse(head["note"]).root
    entries = []
    for row in found:
        encoded = row.body.encode("utf-8")
        ranges = merkle.inclusion_ranges(row.seq - 1, size)
        path = _composed(engine, ranges)
        if not merkle.verify_inclusion(merkle.leaf_hash(encoded), row.seq - 1, size, path, root):
            # A stored subtree disagrees with the leaves: re-hash them all (verify says more).
            path = merkle.range_roots(leaf_hashes(engine, size), ranges)
        entry: dict[str, Any] = {
            "leaf_index": row.seq - 1,
            "leaf": row.body,
            "leaf_hash": _b64(merkle.leaf_hash(encoded)),
            "inclusion_path": [_b64(p) for p in path],
        }
        if row.header is not None:
            entry["header"] = headers.get(row.header)
        entries.append(entry)
    return {
        "format": FORMAT,
        "made_at": utcnow().isoformat(),
        "tree_size": size,
        "checkpoint": head["note"],
        "pinned_key_id": chain.pinned,
        "keys": chain.exported(),
        "certificates": entries,
    }


def _composed(engine: Engine, ranges: Sequence[merkle.Range]) -> list[bytes]:
    """The roots of ``ranges`` from the stored subtrees and, below them, the leaves."""
    n = ledger_nodes.c

    def stored(level: int, idx: int) -> bytes | None:
        with engine.connect() as conn:
            found = conn.scalar(sa.select(n.hash).where(n.level == level, n.idx == idx))
        return None if found is None else bytes.fromhex(found)

    def leaves(start: int, end: int) -> list[bytes]:
        c = certificates.c
        query = (
            sa.select(c.hash, sa.case((c.header.is_(None), c.body), else_=None))
            .where(c.seq > start, c.seq <= end)
            .order_by(c.seq)
        )
        with engine.connect() as conn:
            return [
                bytes.fromhex(h) if body is None else merkle.leaf_hash(body.encode("utf-8"))
                for h, body in conn.execute(query)
            ]

    return [merkle.compose(a, b, stored, leaves, 1 << NODE_LEVEL) for a, b in ranges]


def write_proof(path: Path, proof: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(proof, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@dataclass
class ProofReport:
    file: Path
    certificates: int = 0
    tree_size: int | None = None
    key_id: str | None = None
    faults: list[str] = field(default_factory=list)
    shown: list[dict[str, Any]] = field(default_factory=list)
    """The certificates proven, as users read them (leaf joined with its header)."""

    @property
    def ok(self) -> bool:
        return not self.faults


def is_proof(path: Path) -> bool:
    return path.suffix.lower() == ".json" and not path.name.endswith(".manifest.json")


def verify_proof(path: Path, public_key: Ed25519PublicKey) -> ProofReport:
    """Check a proof file with only the public key (the pinned key, or one it rotated to)."""
    report = ProofReport(path)
    try:
        proof = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such proof file: {path}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        report.faults.append(f"{path.name}: not valid JSON ({exc})")
        return report
    if not isinstance(proof, dict) or proof.get("format") != FORMAT:
        report.faults.append(f"{path.name}: not an inclusion proof ({FORMAT})")
        return report
    keys = _signers(proof, public_key, report)
    try:
        head = note.parse(str(proof.get("checkpoint")))
    except note.NoteError as exc:
        report.faults.append(f"checkpoint: {exc}")
        return report
    report.tree_size = head.size
    signer = next((k for k in keys if note.verified_by(head, head.origin, k)), None)
    if signer is None:
        report.faults.append("checkpoint: its signature does not verify with the key chain")
    else:
        report.key_id = signing.key_id(signer)
    if proof.get("tree_size") != head.size:
        report.faults.append("tree_size: differs from the signed checkpoint's")
    entries = proof.get("certificates")
    if not isinstance(entries, list) or not entries:
        report.faults.append(f"{path.name}: proves no certificate")
        return report
    for entry in entries:
        report.certificates += 1
        report.faults.extend(_entry_faults(entry, head, report))
    return report


def _signers(
    proof: Mapping[str, Any], public_key: Ed25519PublicKey, report: ProofReport
) -> list[Ed25519PublicKey]:
    """The keys trusted to sign: the one given, and the chain it starts when it is pinned."""
    entries = proof.get("keys")
    if not isinstance(entries, list) or not entries:
        return [public_key]
    chain = keyring.follow(entries)
    report.faults.extend(f"keys: {fault}" for fault in chain.faults)
    if chain.find(signing.key_id(public_key)) is None:
        report.faults.append(
            f"keys: the public key {signing.key_id(public_key)} is not the pinned key "
            f"{chain.pinned} nor reached from it by a signed rotation"
        )
        return [public_key]
    return [k.public_key for k in chain.keys]


def _entry_faults(entry: Any, head: note.Checkpoint, report: ProofReport) -> list[str]:
    if not isinstance(entry, dict) or not isinstance(entry.get("leaf"), str):
        return ["certificate: not a proof entry (no leaf)"]
    index = entry.get("leaf_index")
    name = f"certificate at leaf {index}"
    try:
        parsed = json.loads(entry["leaf"])
        claimed = base64.b64decode(str(entry.get("leaf_hash")), validate=True)
        path = [base64.b64decode(str(p), validate=True) for p in entry.get("inclusion_path", [])]
    except (ValueError, binascii.Error, TypeError):
        return [f"{name}: its leaf, leaf hash or inclusion path cannot be read"]
    if not isinstance(parsed, dict) or not isinstance(index, int):
        return [f"{name}: its leaf is not a certificate"]
    faults = []
    hashed = merkle.leaf_hash(entry["leaf"].encode("utf-8"))
    if hashed != claimed:
        faults.append(f"{name}: the leaf does not match its leaf hash (the leaf was altered)")
    if parsed.get("seq") != index + 1:
        faults.append(f"{name}: the leaf's seq {parsed.get('seq')} is not its index + 1")
    if leaf.HEADER in parsed:
        header = entry.get("header")
        if not isinstance(header, dict) or leaf.header_hash(header) != parsed[leaf.HEADER]:
            faults.append(f"{name}: the batch header does not match the hash its leaf names "
                          "(the header was altered)")  # fmt: skip
        shown = leaf.join(entry["leaf"].encode("utf-8"), parsed, header or {})
    else:  # a certificate of the chained ledger: its own hash covers it whole
        if certificate_hash(parsed) != parsed.get("hash"):
            faults.append(f"{name}: the certificate does not match its hash (altered)")
        shown = parsed
    if not merkle.verify_inclusion(claimed, index, head.size, path, head.root):
        faults.append(
            f"{name}: the inclusion path does not lead from the leaf hash to the signed "
            "checkpoint's root (the path or the checkpoint was altered)"
        )
    report.shown.append(shown)
    return faults
