"""Checking a sequence of certificates as the leaves of the ledger's Merkle tree.

The ledger holds two kinds of certificate: those of the chained ledger before revision 0009
(each hashed over its whole body and chained by ``prev_hash``), which are the tree's first
leaves, and leaves joined with their batch header. :class:`LogVerifier` takes both in ledger
order, checks each by its own rules, and re-hashes the tree as it goes, in flat memory: the
ledger's ``verify``, an export's and a proof's verifier share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retention.evidence import leaf, merkle
from retention.evidence.certificate import FIELDS, ChainVerifier, canonical, optional_faults

#: What every leaf certificate carries: the chained fields but ``prev_hash``, and its header.
LEAF_FIELDS = (*(f for f in FIELDS if f != "prev_hash"), leaf.HEADER)


class LogVerifier:
    """Feed certificates in ledger order; ``faults`` says what does not hold.

    ``start_hash``: what the first chained certificate must follow (None: an export that
    starts mid-ledger). ``gaps``: a filtered export skips seq numbers, so only consecutive
    certificates are linked and the tree cannot be re-hashed (``frontier`` is then None)."""

    def __init__(self, start_hash: str | None, *, gaps: bool = False) -> None:
        self.chain = ChainVerifier(start_hash, gaps=gaps)
        self.gaps = gaps
        self.own_faults: list[str] = []
        self.frontier: merkle.Frontier | None = None if gaps else merkle.Frontier()
        self.count = 0
        self.leaves = 0
        self.first_seq: int | None = None
        self.first_hash: str | None = None
        self.last_seq: int | None = None
        self.last_hash: str | None = None

    @property
    def faults(self) -> list[str]:
        return [*self.chain.faults, *self.own_faults]

    def feed(self, cert: Mapping[str, Any], stored: bytes | None = None) -> bytes:
        """Check one certificate; return its leaf hash. ``stored``: the leaf's bytes as the
        ledger holds them (an export re-encodes the certificate instead)."""
        seq = cert.get("seq")
        if leaf.is_leaf_certificate(cert):
            hashed = self._leaf(cert, stored)
        else:
            if self.leaves:
                self.own_faults.append(
                    f"certificate {cert.get('certificate_id')} (seq {seq}): a chained "
                    "certificate after the ledger's first Merkle leaf (out of order)"
                )
            self.chain.feed(cert)
            hashed = merkle.leaf_hash(canonical(cert) if stored is None else stored)
        if self.frontier is not None:
            self.frontier.append(hashed)
        self.count += 1
        if self.first_hash is None:
            self.first_hash = cert.get("hash")
            self.first_seq = seq if isinstance(seq, int) else None
        self.last_hash = cert.get("hash")
        self.last_seq = seq if isinstance(seq, int) else None
        return hashed

    def _leaf(self, cert: Mapping[str, Any], stored: bytes | None) -> bytes:
        seq = cert.get("seq")
        name = f"certificate {cert.get('certificate_id')} (seq {seq})"
        faults = self.own_faults
        missing = [f for f in LEAF_FIELDS if f not in cert]
        if missing:
            faults.append(f"{name}: missing fields {', '.join(missing)}")
        faults.extend(f"{name}: {fault}" for fault in optional_faults(cert))
        if stored is None:  # an export's line: its header and leaf are re-encoded and hashed
            faults.extend(f"{name}: {fault}" for fault in leaf.faults(cert))
        # From the ledger, the leaf is hashed as stored and its header was checked against its
        # hash when read; that the leaf names that header is the ledger's column check.
        if not isinstance(seq, int) or (self.last_seq is not None and seq <= self.last_seq):
            faults.append(f"{name}: out of sequence")
        elif (
            not self.gaps
            and seq != (self.last_seq or 0) + 1
            and (self.last_seq is not None or self.chain.last_hash is not None)
        ):
            faults.append(
                f"{name}: sequence jumps from {self.last_seq or 0} (certificates missing)"
            )
        self.leaves += 1
        encoded = leaf.reassemble(cert)[0] if stored is None else stored
        return merkle.leaf_hash(encoded)
