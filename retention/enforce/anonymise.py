"""Anonymisation strategies: what each column becomes, and how to recognise the result.

``erase`` and ``redact`` write the same value to every record, so the connector can update
a whole batch in one statement; ``year`` and ``pseudonym`` depend on each record's value.
``redact`` leaves an empty (NULL) cell empty: the marker says "there was something here", and
an anonymised record must not claim a note it never had.
:meth:`Anonymiser.is_anonymised` is the evidence behind ``verified: true``: after the
change the engine re-reads the record and checks every column has the anonymised form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from retention.catalog.model import Strategy
from retention.connectors.base import Anonymise, Record
from retention.pseudonym import Secret

REDACTED = "[redacted]"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
PER_RECORD: frozenset[str] = frozenset({"year", "pseudonym"})


class Anonymiser:
    def __init__(self, strategies: Mapping[str, Strategy], secret: Secret) -> None:
        self.strategies = dict(strategies)
        self._secret = secret
        self.constant: dict[str, Any] = {
            column: None if strategy == "erase" else REDACTED
            for column, strategy in self.strategies.items()
            if strategy not in PER_RECORD
        }
        self.per_record_columns = tuple(
            column for column, strategy in self.strategies.items() if strategy in PER_RECORD
        )
        self.keep_null = frozenset(
            column for column, strategy in self.strategies.items() if strategy == "redact"
        )

    @property
    def fields(self) -> list[str]:
        return list(self.strategies)

    def change(self, records: Sequence[Record]) -> Anonymise:
        if not self.per_record_columns:
            return Anonymise(constant=self.constant, keep_null=self.keep_null)
        per_record = {
            record.key: {
                column: self._transform(column, record.values.get(column))
                for column in self.per_record_columns
            }
            for record in records
        }
        return Anonymise(constant=self.constant, per_record=per_record, keep_null=self.keep_null)

    def _transform(self, column: str, value: Any) -> Any:
        if self.strategies[column] == "pseudonym":
            # A value that already is a pseudonym is left as it is, so re-running never
            # pseudonymises a pseudonym.
            if isinstance(value, str) and _HEX64.match(value):
                return value
            return self._secret.pseudonym(value)
        return _year(value)

    def is_anonymised(self, values: Mapping[str, Any]) -> bool:
        return all(_DONE[strategy](values.get(c)) for c, strategy in self.strategies.items())


def _erased(value: Any) -> bool:
    return value is None


def _redacted(value: Any) -> bool:
    return value is None or bool(value == REDACTED)


def _first_of_year(value: Any) -> bool:
    if value is None:
        return True
    moment = _as_date(value)
    return moment is not None and (moment.month, moment.day) == (1, 1)


def _pseudonymous(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(_HEX64.match(value)))


#: For each strategy, whether a re-read value is in its anonymised form.
_DONE: dict[str, Callable[[Any], bool]] = {
    "erase": _erased, "redact": _redacted, "year": _first_of_year, "pseudonym": _pseudonymous,
}  # fmt: skip


def _year(value: Any) -> Any:
    if isinstance(value, datetime):
        return datetime(value.year, 1, 1, tzinfo=value.tzinfo)
    if isinstance(value, date):
        return date(value.year, 1, 1)
    if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit():
        return date(int(value[:4]), 1, 1)
    return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
