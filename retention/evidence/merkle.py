"""The Merkle tree of RFC 9162 §2.1 over the ledger's leaves, its proofs and their checks.

A leaf's hash is ``SHA-256(0x00 || leaf)`` and an interior node's ``SHA-256(0x01 || left ||
right)``; a tree of ``n`` leaves splits at the largest power of two below ``n``. These are
Certificate Transparency's definitions byte for byte, so any RFC 9162 verifier (Trillian's,
transparency-dev/merkle, Sigsum's) agrees with this one on roots and proofs.

The ledger never stores interior nodes per record. :class:`Frontier` holds the roots of the
perfect subtrees a tree of ``n`` leaves decomposes into — at most log2(n) hashes — and takes
leaves one at a time, so a batch extends the tree in memory and a verifier re-hashes ten million
leaves in flat memory. A proof is a list of roots of leaf ranges (:func:`inclusion_ranges`,
:func:`consistency_ranges`), computed in one streaming pass over the leaf hashes
(:func:`range_roots`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
_LEAF = b"\x00"
_NODE = b"\x01"

#: The root of the empty tree: the hash of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``: a leaf can never pass for an interior node."""
    return hashlib.sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` > 1): where RFC 9162 splits."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The right edge of a growing tree: the roots of its perfect subtrees, largest first.

    Appending a leaf merges equal-height subtrees as a binary counter carries, so the state is
    at most one hash per bit of the size: the tree's root, and every later root, follows from it
    without the leaves before (tlog-tiles and Trillian keep the same "compact range")."""

    __slots__ = ("_hashes", "_heights", "completed", "keep_from", "size")

    def __init__(self, keep_from: int | None = None) -> None:
        self.size = 0
        self._hashes: list[bytes] = []
        self._heights: list[int] = []
        self.keep_from = keep_from
        self.completed: list[tuple[int, int, bytes]] = []
        """(level, index, hash) of every perfect subtree of ``keep_from`` levels or more that
        appending completed: node ``index`` of its level covers leaves ``[index << level,
        (index + 1) << level)``. What a batch stores so proofs need not re-read every leaf."""

    def append(self, hashed: bytes) -> None:
        """Add one leaf, given by its leaf hash."""
        hashes, heights = self._hashes, self._heights
        height = 0
        while heights and heights[-1] == height:
            hashed = node_hash(hashes.pop(), hashed)
            heights.pop()
            height += 1
            if self.keep_from is not None and height >= self.keep_from:
                self.completed.append((height, self.size >> height, hashed))
        hashes.append(hashed)
        heights.append(height)
        self.size += 1

    def extend(self, hashes: Iterable[bytes]) -> None:
        for hashed in hashes:
            self.append(hashed)

    def root(self) -> bytes:
        """MTH of the leaves so far: the subtree roots folded from the right."""
        if not self._hashes:
            return EMPTY_ROOT
        result = self._hashes[-1]
        for hashed in reversed(self._hashes[:-1]):
            result = node_hash(hashed, result)
        return result

    def state(self) -> list[str]:
        """The subtree roots as hex, largest first: what the ledger head stores."""
        return [h.hex() for h in self._hashes]

    @classmethod
    def restore(cls, size: int, roots: Sequence[str], keep_from: int | None = None) -> Frontier:
        """The frontier of a tree of ``size`` leaves from its :meth:`state`.

        Raises ValueError when the roots cannot be those of a tree of that size."""
        heights = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        if len(heights) != len(roots):
            raise ValueError(f"a tree of {size} leaves has {len(heights)} subtree roots")
        frontier = cls(keep_from)
        frontier.size = size
        frontier._heights = heights
        frontier._hashes = [bytes.fromhex(h) for h in roots]
        if any(len(h) != HASH_SIZE for h in frontier._hashes):
            raise ValueError("a subtree root is not a SHA-256 hash")
        return frontier


def root(hashes: Iterable[bytes]) -> bytes:
    """MTH of the leaves with these leaf hashes, in O(log n) memory."""
    frontier = Frontier()
    frontier.extend(hashes)
    return frontier.root()


Range = tuple[int, int]
"""Leaves ``[start, end)``: a proof element is the root of such a range."""


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose roots make PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index - start < k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    path.reverse()
    return path


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The ranges whose roots make PROOF(first, D[second]) (RFC 9162 §2.1.4.1).

    Empty when ``first`` is 0 or equals ``second``: there is nothing to prove."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} leaves to {second}")
    if first in (0, second):
        return []
    proof: list[Range] = []
    start, end, whole = 0, second, True
    m = first
    while m != end - start:
        k = split(end - start)
        if m <= k:
            proof.append((start + k, end))
            end = start + k
        else:
            proof.append((start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        proof.append((start, end))
    proof.reverse()
    return proof


def range_roots(hashes: Iterable[bytes], ranges: Sequence[Range]) -> list[bytes]:
    """The root of each range, in the order given, from one pass over the leaf hashes.

    The ranges of a proof never overlap; the pass holds one frontier at a time and stops at the
    end of the last range."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    roots: list[bytes] = [b""] * len(ranges)
    position = 0
    pending = iter(hashes)
    for i in order:
        start, end = ranges[i]
        if start < position:
            raise ValueError("proof ranges overlap")
        for _ in range(start - position):
            if next(pending, None) is None:
                raise ValueError(f"the tree has fewer than {end} leaves")
        frontier = Frontier()
        for _ in range(end - start):
            hashed = next(pending, None)
            if hashed is None:
                raise ValueError(f"the tree has fewer than {end} leaves")
            frontier.append(hashed)
        roots[i] = frontier.root()
        position = end
    return roots


def compose(
    start: int,
    end: int,
    stored: Callable[[int, int], bytes | None],
    leaves: Callable[[int, int], Sequence[bytes]],
    small: int,
) -> bytes:
    """MTH of leaves ``[start, end)`` from stored perfect subtrees where there are some
    (``stored(level, index)``), and from the leaf hashes (``leaves(start, end)``) of ranges of
    at most ``small`` leaves: a proof over millions of leaves reads a few hundred rows."""
    size = end - start
    if size & (size - 1) == 0 and start % size == 0 and size > 1:
        level = size.bit_length() - 1
        found = stored(level, start >> level)
        if found is not None:
            return found
    if size <= small:
        return root(leaves(start, end))
    k = split(size)
    return node_hash(
        compose(start, start + k, stored, leaves, small),
        compose(start + k, end, stored, leaves, small),
    )


def inclusion_proof(hashes: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """PATH(index, D[size]) over the first ``size`` leaf hashes (all of them by default)."""
    size = len(hashes) if size is None else size
    return range_roots(hashes[:size], inclusion_ranges(index, size))


def consistency_proof(
    hashes: Sequence[bytes], first: int, second: int | None = None
) -> list[bytes]:
    """PROOF(first, D[second]) over the first ``second`` leaf hashes."""
    second = len(hashes) if second is None else second
    return range_roots(hashes[:second], consistency_ranges(first, second))


def _valid(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(
    hashed: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: whether ``path`` proves the leaf hash at ``index`` under the root of a
    tree of ``size`` leaves."""
    if not 0 <= index < size or not _valid(hashed, expected_root, *path):
        return False
    fn, sn = index, size - 1
    result = hashed
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(p, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == expected_root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether ``proof`` shows the tree of ``first`` leaves with root
    ``first_root`` is a prefix of the tree of ``second`` leaves with root ``second_root``."""
    if not 0 <= first <= second or not _valid(first_root, second_root, *proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: its root is a node of the new tree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
