"""The anonymised form of each strategy: what a re-read must show before a certificate says
``verified``, and that what the change writes always has that form."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from retention.connectors.base import Record
from retention.enforce.anonymise import REDACTED, Anonymiser
from retention.pseudonym import Secret

SECRET = Secret(b"k" * 40)
HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("strategy", "value", "done"),
    [
        ("erase", None, True), ("erase", "", False), ("erase", "Aino", False),
        ("redact", REDACTED, True), ("redact", None, True), ("redact", "Aino", False),
        ("year", None, True), ("year", date(1990, 1, 1), True), ("year", date(1990, 5, 1), False),
        ("year", "1990-01-01", True), ("year", "1990-05-01", False), ("year", "soon", False),
        ("year", datetime(1990, 1, 1, 12), True),
        ("pseudonym", None, True), ("pseudonym", HEX, True), ("pseudonym", HEX.upper(), False),
        ("pseudonym", HEX[:-1], False), ("pseudonym", "P000000001", False),
    ],
)  # fmt: skip
def test_a_value_is_anonymised_only_in_its_strategys_form(
    strategy: Any, value: Any, done: bool
) -> None:
    anonymiser = Anonymiser({"column": strategy}, SECRET)
    assert anonymiser.is_anonymised({"column": value}) is done


def test_every_column_must_be_in_form_and_the_change_always_produces_it() -> None:
    strategies: dict[str, Any] = {
        "name": "erase", "note": "redact", "born": "year", "person": "pseudonym"
    }  # fmt: skip
    anonymiser = Anonymiser(strategies, SECRET)
    record = Record(key=(1,), trigger=None,
                    values={"born": date(1990, 5, 17), "person": "P000000001"})  # fmt: skip
    change = anonymiser.change([record])
    after = {**change.constant, **change.per_record[(1,)]}
    assert anonymiser.is_anonymised(after)
    assert after["born"] == date(1990, 1, 1) and after["person"] != "P000000001"
    for column in strategies:  # one column left as it was is enough to fail
        assert not anonymiser.is_anonymised({**after, column: "Aino"})
