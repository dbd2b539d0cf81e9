"""Looking rows up by record reference through the narrow indexes of revisions 0012 and 0013.

A record reference is a keyed hash: 64 hex digits, random. An index on the whole reference
took a random page of a wide index per row inserted (a certificate, a planned record); the
ledger's and the plans' lookup indexes hold only its first :data:`RECORD_PREFIX` characters
(48 bits: a batch's lookup meets almost only its own records), as an expression on SQLite and
PostgreSQL and as a column prefix on MariaDB, and every lookup compares the whole reference
after the prefix (:func:`refs_in`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa

from retention.connectors.sql_sets import one_of

#: How many leading characters of a record reference the lookup indexes hold.
RECORD_PREFIX = 12

#: References looked up per query: with their prefixes, twice as many bound parameters, well
#: under SQLite's least limit (32,766) whatever batch size a catalog sets.
LOOKUP = 5000


def prefix_of(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """The indexed expression: the first :data:`RECORD_PREFIX` characters of ``column``."""
    return sa.func.substr(
        column, sa.literal_column("1"), sa.literal_column(str(RECORD_PREFIX)), type_=sa.String
    )


def chunks(refs: Iterable[str]) -> Iterator[list[str]]:
    """``refs`` in lists of at most :data:`LOOKUP`, one query each."""
    listed = list(refs)
    for start in range(0, len(listed), LOOKUP):
        yield listed[start : start + LOOKUP]


def refs_in(
    column: sa.ColumnElement[str], refs: Sequence[str], dialect: str
) -> sa.ColumnElement[bool]:
    """``column`` (a ``record_ref``) is one of ``refs``, found through the lookup index: its
    prefix first, then the whole reference. MariaDB's index is a prefix of the column itself,
    which the plain comparison already uses."""
    listed = list(refs)
    if dialect == "sqlite" and len(listed) == 1:
        # SQLite turns `x IN (?)` into `x = ?` and then puts the value in place of the column
        # inside substr(...), which leaves its index on that expression unused: the lookup
        # would read the whole table. A list of two keeps it an IN.
        listed *= 2
    whole = one_of(column, listed, dialect)
    if dialect in ("mysql", "mariadb"):
        return whole
    prefixes = sorted({r[:RECORD_PREFIX] for r in listed})
    return sa.and_(one_of(prefix_of(column), prefixes, dialect), whole)
