"""The canonical form that is hashed and signed, pinned: a faster serialiser must not move it.

Certificates already in ledgers and exports were hashed with the standard library's form;
if the bytes changed, every one of them would fail verification.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from retention.evidence.certificate import canonical, certificate_hash, seal
from retention.pseudonym import key_json, key_text

# What is signed: objects of text, integers, booleans and nulls, nested (archive, fields).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def reference(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@given(st.dictionaries(st.text(), values, max_size=8))
def test_canonical_is_the_standard_library_form(value: dict[str, Any]) -> None:
    try:
        expected = reference(value)
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form in either
        return
    assert canonical(value) == expected


def test_integers_beyond_64_bits_keep_the_reference_form() -> None:
    value = {"seq": 2**70, "name": "ä"}
    assert canonical(value) == reference(value)


def test_a_known_certificate_keeps_its_hash() -> None:
    """A certificate as the engine writes it; its hash was computed with the stdlib form."""
    body = {
        "certificate_id": "6f1c2b9e-3c44-4f3e-9d7a-0c2f4b1a9e10",
        "run_id": "R20261122-0a1b2c3d",
        "plan_id": "P20261122-0a1b2c3d",
        "approved_by": None,
        "register": "alumni",
        "policy": "members",
        "policy_sha256": "a" * 64,
        "record_ref": "b" * 64,
        "action": "anonymised",
        "reason": "retention",
        "fields": ["first_name", "email"],
        "archive": None,
        "trigger_date": "2014-05-31",
        "expires_on": "2024-05-31",
        "executed_at": "2026-11-22T01:02:03.456789+00:00",
        "verified": True,
        "legal_basis": "Yliopistolaki 558/2009 § 43 — säilytys",
    }
    sealed = seal(body, 7, "0" * 64)
    expected = hashlib.sha256(
        reference({k: v for k, v in sealed.items() if k != "hash"})
    ).hexdigest()
    assert sealed["hash"] == expected == certificate_hash(sealed)


@given(st.lists(st.one_of(st.integers(), st.text(), st.dates()), min_size=1, max_size=3))
def test_key_json_is_the_json_list_of_key_texts(key: list[Any]) -> None:
    texts = [key_text(v) for v in key]
    try:
        expected = json.dumps(texts, ensure_ascii=False, separators=(",", ":"))
        expected.encode("utf-8")
    except UnicodeEncodeError:
        return
    assert key_json(key) == expected


def test_certificate_ids_are_version_7_uuids_that_grow_with_time() -> None:
    import uuid
    from datetime import UTC, datetime

    from freezegun import freeze_time

    from retention.evidence.certificate import new_certificate_id

    with freeze_time("2026-11-22 01:00:00"):
        early = [new_certificate_id() for _ in range(50)]
    with freeze_time("2026-11-22 01:00:01"):
        late = new_certificate_id()
    parsed = [uuid.UUID(text) for text in [*early, late]]
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(early)) == 50  # random below the millisecond
    assert max(early) < late  # the text form sorts by time, so the index grows at its end
    millis = parsed[-1].int >> 80
    assert datetime.fromtimestamp(millis / 1000, UTC) == datetime(2026, 11, 22, 1, 0, 1, tzinfo=UTC)


def test_certificate_ids_are_canonical_uuid_text_with_74_random_bits() -> None:
    """Every id parses back to the same text, carries the version and variant, the time it was
    made in its first 48 bits, and randomness in each of the 74 other bits."""
    import uuid
    from datetime import timedelta
    from itertools import pairwise

    from freezegun import freeze_time

    from retention.evidence.certificate import new_certificate_id

    ids: list[str] = []
    # Off the millisecond boundaries: freezegun's clock goes through a float.
    with freeze_time("2026-11-22 01:00:00.000200") as clock:
        for _ in range(2000):
            ids.append(new_certificate_id())
            clock.tick(timedelta(microseconds=500))  # two ids a millisecond, then the next
    parsed = [uuid.UUID(text) for text in ids]
    assert [str(u) for u in parsed] == ids  # lower case, hyphens where RFC 9562 puts them
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(ids)) == len(ids)
    start = 1_795_309_200_000  # 2026-11-22T01:00:00Z in Unix milliseconds
    assert [u.int >> 80 for u in parsed] == [start + i // 2 for i in range(len(ids))]
    # Ids of later milliseconds sort after earlier ones, as text as well as as numbers.
    firsts = ids[::2]
    assert all(a[:13] < b[:13] for a, b in pairwise(firsts))
    # Each random bit is set in some ids and clear in others: none is stuck or copied.
    random_mask = (1 << 128) - 1 ^ (0xFFFF_FFFF_FFFF << 80 | 0xF << 76 | 0b11 << 62)
    set_anywhere = clear_anywhere = 0
    for u in parsed:
        set_anywhere |= u.int & random_mask
        clear_anywhere |= ~u.int & random_mask
    assert set_anywhere == clear_anywhere == random_mask
    # Two bits never agree in every id (one random digit used twice would make them agree).
    bits = [b for b in range(128) if random_mask >> b & 1]
    columns = {b: sum(1 << i for i, u in enumerate(parsed) if u.int >> b & 1) for b in bits}
    assert len(set(columns.values())) == len(bits)
