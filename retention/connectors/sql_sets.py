"""Membership in a batch of values, written the way each database plans it best.

A batch of 10,000 keys as ``IN (:p1, ..., :p10000)`` makes PostgreSQL's driver split and
the server plan a 10,000-parameter statement every time (a third of a run's time on
PostgreSQL); ``= ANY(:array)`` sends one array parameter and one short statement that is
prepared once. SQLite and MariaDB have no arrays and keep ``IN``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def one_of(
    column: sa.ColumnElement[Any], values: Sequence[Any], dialect: str
) -> sa.ColumnElement[bool]:
    """``column`` equals one of ``values``, for a database of dialect name ``dialect``."""
    if dialect == "postgresql":
        array = sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == sa.any_(array)
    return column.in_(list(values))
