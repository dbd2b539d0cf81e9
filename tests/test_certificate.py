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

from retention.certificate import canonical, certificate_hash, seal
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

    from retention.certificate import new_certificate_id

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
