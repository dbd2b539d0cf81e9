"""The Merkle tree agrees with RFC 6962/9162: the Certificate Transparency reference vectors,
and a naive recursive tree written here straight from the RFC's definitions (never the code
under test) over every size and index hypothesis picks."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retention.evidence import merkle

# The reference leaves and tree heads of RFC 6962's test data (certificate-transparency's
# merkle_tree_test.cc, transparency-dev/merkle testonly/constants.go).
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip
INCLUSION = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip
CONSISTENCY = {
    (2, 8): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}  # fmt: skip


# --- RFC 9162 §2.1, transcribed: the oracle the module is compared with --------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(d: list[bytes]) -> bytes:
    if not d:
        return _sha(b"")
    if len(d) == 1:
        return _sha(b"\x00" + d[0])
    k = _k(len(d))
    return _sha(b"\x01" + _mth(d[:k]) + _mth(d[k:]))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*_path(m, d[:k]), _mth(d[k:])]
    return [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


def _data(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") * (i % 3) for i in range(n)]


# --- the reference vectors -------------------------------------------------------------------


def test_roots_are_rfc_6962s_for_every_size() -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in LEAVES]
    assert ROOTS[0] == merkle.EMPTY_ROOT
    for n in range(len(LEAVES) + 1):
        assert merkle.root(hashes[:n]) == ROOTS[n], n


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_are_rfc_6962s(index: int, size: int) -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in LEAVES]
    expected = [bytes.fromhex(h) for h in INCLUSION[index, size]]
    assert merkle.inclusion_proof(hashes, index, size) == expected
    assert merkle.verify_inclusion(hashes[index], index, size, expected, ROOTS[size])


@pytest.mark.parametrize(("first", "second"), sorted(CONSISTENCY))
def test_consistency_proofs_are_rfc_6962s(first: int, second: int) -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in LEAVES]
    expected = [bytes.fromhex(h) for h in CONSISTENCY[first, second]]
    assert merkle.consistency_proof(hashes, first, second) == expected
    assert merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], expected)


# --- against the transcribed definitions -----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_the_streaming_root_is_mth(n: int) -> None:
    d = _data(n)
    frontier = merkle.Frontier()
    for leaf in d:
        frontier.append(merkle.leaf_hash(leaf))
    assert frontier.root() == _mth(d)
    assert len(frontier.state()) == bin(n).count("1")  # log n hashes, never more
    restored = merkle.Frontier.restore(n, frontier.state())
    restored.append(merkle.leaf_hash(b"next"))
    assert restored.root() == _mth([*d, b"next"])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=200).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n - 1))
))  # fmt: skip
def test_inclusion_proofs_are_path_and_verify(case: tuple[int, int]) -> None:
    n, m = case
    d = _data(n)
    hashes = [merkle.leaf_hash(leaf) for leaf in d]
    proof = merkle.inclusion_proof(hashes, m)
    assert proof == _path(m, d)
    root = _mth(d)
    assert merkle.verify_inclusion(hashes[m], m, n, proof, root)
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"other"), m, n, proof, root)
    if n > 1:
        assert not merkle.verify_inclusion(hashes[m], (m + 1) % n, n, proof, root)
    for i in range(len(proof)):  # any flipped bit anywhere in the path
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not merkle.verify_inclusion(hashes[m], m, n, bad, root)
    assert not merkle.verify_inclusion(hashes[m], m, n, [*proof, root], root)
    if proof:
        assert not merkle.verify_inclusion(hashes[m], m, n, proof[:-1], root)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=200).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
))  # fmt: skip
def test_consistency_proofs_are_proof_and_verify(case: tuple[int, int]) -> None:
    n, m = case
    d = _data(n)
    hashes = [merkle.leaf_hash(leaf) for leaf in d]
    proof = merkle.consistency_proof(hashes, m, n)
    assert proof == ([] if m in (0, n) else _subproof(m, d, True))
    old, new = _mth(d[:m]), _mth(d)
    assert merkle.verify_consistency(m, n, old, new, proof)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not merkle.verify_consistency(m, n, old, new, bad)
    if 0 < m < n:
        altered = _mth([b"rewritten", *d[1:m]])  # an old tree head whose history changed
        assert not merkle.verify_consistency(m, n, altered, new, proof)
        assert not merkle.verify_consistency(m, n, old, _mth([*d[:-1], b"x"]), proof)
        assert not merkle.verify_consistency(m, n, old, new, proof[:-1])


def test_bad_shapes_are_refused_not_crashed_on() -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in LEAVES]
    proof = merkle.inclusion_proof(hashes, 5)
    assert not merkle.verify_inclusion(hashes[5], 8, 8, proof, ROOTS[8])
    assert not merkle.verify_inclusion(hashes[5], -1, 8, proof, ROOTS[8])
    assert not merkle.verify_inclusion(hashes[5], 5, 8, [b"short", *proof[1:]], ROOTS[8])
    assert not merkle.verify_consistency(8, 6, ROOTS[8], ROOTS[6], [])
    assert not merkle.verify_consistency(6, 8, ROOTS[6], ROOTS[8], [])
    assert merkle.verify_consistency(0, 8, merkle.EMPTY_ROOT, ROOTS[8], [])
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_ranges(8, 8)
    with pytest.raises(ValueError, match="subtree roots"):
        merkle.Frontier.restore(3, ["00" * 32])


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.integers(min_value=0, max_value=4),
       st.data())  # fmt: skip
def test_stored_subtrees_compose_every_range(n: int, keep: int, data: st.DataObject) -> None:
    """The subtrees a growing frontier completes are the MTH of the leaves they cover, and a
    range's root composed from them (some missing) is the MTH of that range."""
    d = _data(n)
    hashes = [merkle.leaf_hash(leaf) for leaf in d]
    frontier = merkle.Frontier(keep_from=keep)
    split_at = data.draw(st.integers(min_value=0, max_value=n))
    frontier.extend(hashes[:split_at])
    resumed = merkle.Frontier.restore(split_at, frontier.state(), keep_from=keep)
    resumed.extend(hashes[split_at:])
    nodes = {(lv, i): h for lv, i, h in frontier.completed + resumed.completed}
    for (level, index), node in nodes.items():
        assert level >= max(keep, 1)
        assert node == _mth(d[index << level : (index + 1) << level])
    dropped = data.draw(st.sets(st.sampled_from(sorted(nodes)))) if nodes else set()
    start = data.draw(st.integers(min_value=0, max_value=n - 1))
    end = data.draw(st.integers(min_value=start + 1, max_value=n))
    composed = merkle.compose(
        start, end, lambda lv, i: None if (lv, i) in dropped else nodes.get((lv, i)),
        lambda a, b: hashes[a:b], 1 << keep,
    )  # fmt: skip
    assert composed == _mth(d[start:end])
