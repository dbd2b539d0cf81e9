"""The contract between the engine and a source system.

The engine depends on this module only; it never imports a backend. A connector:

* describes a table so ``retention check`` can prove a policy fits it (:meth:`describe`);
* counts and streams the records a :class:`Selection` picks, in key order and in batches,
  with the policy's filter and due cutoff evaluated by the source, never in Python;
* applies one :class:`Change` to one batch **inside one source transaction**, re-checking
  in that same statement that every record is still selected (still due, still matching),
  so a record that changed since it was read is left alone;
* reports the records its change statement changed where the source can say so
  (:meth:`Connector.apply_reported`, ``DELETE … RETURNING``), and re-reads records after a
  change, so a certificate is only ``verified`` by evidence;
* reports the records it will not dispose of, or cannot prove gone, as
  :class:`RecordProblem` values (:meth:`Connector.problems`), so that one bad record stays a
  problem of its own and of its policy, never of the whole run.

Records are named by their key values; a connector never logs column values, and never puts
a key into a message (a file name can be a person's name): the engine names a record by its
reference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol

Key = tuple[Any, ...]
BatchSize = int | Callable[[], int]
"""A fixed number of records per page, or a callable asked before each page (batches
sized by time: the engine's pacer)."""
ColumnKind = Literal["date", "datetime", "string", "integer", "number", "boolean", "other"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can guarantee; the engine asks instead of checking types."""

    transactional: bool
    """A batch's change commits or rolls back as a whole."""
    reread: bool
    """Records can be read again by key to verify a change."""
    max_bind_params: int
    """How many bound values one statement may carry; bounds the batch size."""
    anonymise: bool = True
    """Columns can be overwritten in place (a file share can only delete or copy)."""
    record_problems: bool = False
    """Listing can find records the connector refuses for what they are (a link, a hard
    link, a name that is not UTF-8); ``retention check`` lists them up front."""
    versions: tuple[str, ...] = ()
    """Columns that change when a record is written anew under the same key (a file's
    ``mtime``): a certificate's fingerprint covers them, so a file written again at a path
    whose file was deleted is a new record, while one restored with its times is not."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    nullable: bool
    length: int | None = None
    sql_type: str = ""


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: Mapping[str, Column]
    primary_key: tuple[str, ...]
    unique: tuple[frozenset[str], ...] = ()
    dynamic: Callable[[str], Column | None] | None = None
    """For sources whose fields are computed (a file's sidecar value, a date in its path):
    resolves a name that is not in ``columns``."""

    def column(self, name: str) -> Column | None:
        found = self.columns.get(name)
        if found is None and self.dynamic is not None:
            return self.dynamic(name)
        return found

    def is_unique(self, key: Sequence[str]) -> bool:
        """True when the schema itself guarantees ``key`` is unique."""
        wanted = frozenset(key)
        if self.primary_key and frozenset(self.primary_key) <= wanted:
            return True
        return any(group <= wanted for group in self.unique)


@dataclass(frozen=True)
class Condition:
    """A test on one column: equals a value, is in a list, or is not empty."""

    column: str
    op: Literal["eq", "in", "not_empty"]
    value: Any = None

    def holds(self, value: Any) -> bool:
        """The test in Python, with SQL's reading of NULL (never equal to anything): the
        rule of a source that compares in Python (a file share). A database's own verdict,
        under its collation, comes with each record (``Record.kept``) and is the one used."""
        if value is None:
            return False
        if self.op == "not_empty":
            return bool(value != "")
        if self.op == "in":
            return bool(value in self.value)
        return bool(value == self.value)


@dataclass(frozen=True)
class Selection:
    """Which records of a table a policy looks at, and which of them are candidates.

    With ``triggers``, candidates are the rows whose trigger date is set and earlier than
    ``bound``; several trigger columns combine by ``trigger_rule`` (``latest``: every one is
    set and before the bound; ``earliest``: any one is). Without triggers, or without a
    bound, every matching row is a candidate (a fixed ``until`` that has passed, or an
    erasure request, which still reads the trigger dates for its certificates).
    """

    table: str
    """The table name, or for a file share the path glob."""
    key: tuple[str, ...]
    match: Mapping[str, Any] = field(default_factory=dict)
    triggers: tuple[str, ...] = ()
    trigger_rule: Literal["latest", "earliest"] = "latest"
    bound: date | None = None
    columns: tuple[str, ...] = ()
    """Columns to read along with each candidate (subject, values to transform)."""
    subject: tuple[str, Any] | None = None
    """Only the records of this data subject: (column, value)."""
    unless: tuple[Condition, ...] = ()
    """A record meeting any of these is kept; :meth:`Connector.apply` re-checks them."""


def page_size(batch_size: BatchSize) -> int:
    """How many records the next page may hold (at least one)."""
    return max(1, batch_size() if callable(batch_size) else batch_size)


def combine_triggers(dates: Sequence[date | None], rule: str) -> date | None:
    """A record's trigger date from several columns, as every backend must compute it:
    ``latest`` needs all of them set and takes the last, ``earliest`` takes the first set."""
    present = [d for d in dates if d is not None]
    if not present or (rule == "latest" and len(present) < len(dates)):
        return None
    return max(present) if rule == "latest" else min(present)


@dataclass(frozen=True, slots=True)
class Record:
    key: Key
    trigger: date | None
    values: Mapping[str, Any]
    kept: tuple[bool, ...] | None = None
    """The source's own verdict on each of the selection's ``unless`` conditions, in order
    (a database compares under its collation, padding and type rules, which Python's ``==``
    does not know); None where :meth:`Condition.holds` is the source's rule (a file share)."""


@dataclass(frozen=True)
class Delete:
    """Remove the records."""


@dataclass(frozen=True)
class Anonymise:
    """Overwrite columns: the same value for every record, and/or a value per record.

    A column in ``keep_null`` gets its constant only where it holds a value: NULL stays NULL.
    """

    constant: Mapping[str, Any]
    per_record: Mapping[Key, Mapping[str, Any]] = field(default_factory=dict)
    keep_null: frozenset[str] = frozenset()


Change = Delete | Anonymise

ProblemEffect = Literal["kept", "unknown", "disposed"]


@dataclass(frozen=True)
class RecordProblem:
    """A record the connector met but would not dispose of, or cannot prove gone."""

    key: Key
    """The record's key; the engine shows its reference, never the key."""
    problem: str
    """What is wrong and what to do, in words that repeat nothing of the record."""
    effect: ProblemEffect = "kept"
    """``kept``: not disposed of, so no certificate, even if a re-read misses it (a hard
    link appeared as it was deleted); ``unknown``: a re-read could not tell whether it is
    gone, so its intent stays until a later run can; ``disposed``: it is gone, but something
    beside it is not (a sidecar that could not be deleted)."""


class Connector(Protocol):
    """A source system holding records (a database, a file share)."""

    id: str
    capabilities: Capabilities

    def ping(self) -> None:
        """Reach the source once; raise SourceUnavailable saying why not."""
        ...

    def describe(self, table: str) -> TableInfo:
        """The table's columns and keys. Raises LookupError when the table does not exist."""
        ...

    def duplicate_keys(self, table: str, key: Sequence[str]) -> int:
        """How many key values occur more than once (0 for a usable key)."""
        ...

    def equal(self, table: str, column: str, first: Any, second: Any) -> bool:
        """Whether ``column`` of ``table`` can hold a value equal to both ``first`` and
        ``second``, as the source compares (collation, trailing spaces, type conversion):
        two ``match:`` values that are equal here select the same records."""
        ...

    def unless_met(self, selection: Selection, keys: Sequence[Key]) -> dict[Key, tuple[bool, ...]]:
        """For each existing record among ``keys``, which of ``selection.unless`` it meets,
        as the source compares: the same verdicts :meth:`candidates` gives in ``Record.kept``."""
        ...

    def count(self, selection: Selection, *, candidates_only: bool) -> int:
        """Count the matching rows, or only the candidates among them."""
        ...

    def candidates(self, selection: Selection, batch_size: BatchSize) -> Iterator[list[Record]]:
        """Stream the candidates in ascending key order, ``batch_size`` at a time; a
        callable ``batch_size`` is asked again before each page."""
        ...

    def apply(self, selection: Selection, keys: Sequence[Key], change: Change) -> int:
        """Apply ``change`` to ``keys`` in one transaction; only rows still selected change.

        Returns the number of rows the source reports as changed (informative only: the
        engine verifies by :meth:`reread`).
        """
        ...

    def apply_reported(
        self, selection: Selection, keys: Sequence[Key], change: Change, columns: Sequence[str]
    ) -> dict[Key, Mapping[str, Any]] | None:
        """:meth:`apply`, with the records the source itself reports it changed (``DELETE …
        RETURNING``): each changed record's key with ``columns`` as they are after the
        change (as they were, for a delete). None where the source cannot report this
        change: the engine then re-reads. A record not reported was not changed by this
        call; the engine re-reads those to tell whether they are gone anyway.
        """
        ...

    def reread(
        self,
        selection: Selection,
        keys: Sequence[Key],
        columns: Sequence[str],
        *,
        selected_only: bool = False,
    ) -> dict[Key, Mapping[str, Any]]:
        """Read ``columns`` of the records that still exist among ``keys``.

        With ``selected_only``, only those the selection still picks (due, matching, not
        kept by ``unless``): the evidence that an anonymising change really applied to them.
        """
        ...

    def files(self, selection: Selection, keys: Sequence[Key]) -> dict[Key, list[Path]]:
        """The files that belong to these records (a share's file and its sidecar), to be
        archived with them; records with no files are left out."""
        ...

    def parse_key(self, table: str, columns: Sequence[str], text: Sequence[str]) -> Key:
        """Turn a key's text form (as stored in the state) back into typed values."""
        ...

    def problems(self) -> list[RecordProblem]:
        """The record problems met by the calls since the last one, each once; then forgets
        them. :meth:`reread` also lists a record it cannot tell present or gone (as present)
        and reports it here as ``unknown``."""
        ...

    def close(self) -> None: ...
