"""Alembic migrations of the state database.

:func:`retention.state.database.open_state` applies them: the schema is versioned in the database's
``alembic_version`` table and every upgrade of the engine brings it to :data:`HEAD` without
touching a row it does not mean to. Nothing here reads an ``alembic.ini``: :func:`config`
builds the configuration in code and hands the caller's connection to ``env.py``.

Revision :data:`BASELINE` (0001) is the schema as ``metadata.create_all`` made it before the
schema was versioned; it is frozen. To change the schema, change the tables in
``retention/state.py`` and add a revision beside the others, by hand or drafted by
autogenerate against a scratch database at head, then read and correct it::

    from alembic import command
    from retention.state.migrations import config
    cfg = config(url="sqlite:///scratch.db")
    command.upgrade(cfg, "head")
    command.revision(cfg, "what changes", autogenerate=True, rev_id="0003")

and set :data:`HEAD` to the new revision.

Revisions must work on SQLite, PostgreSQL and MariaDB: on SQLite alter tables inside
``op.batch_alter_table`` (autogenerate renders that); MariaDB commits every DDL statement at
once, so a revision that fails there half way is not rolled back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Alembic is imported only when a database needs migrating
    import sqlalchemy as sa
    from alembic.config import Config

#: The directory holding ``env.py`` and ``versions/``.
LOCATION = Path(__file__).resolve().parent

#: The revision a database made by the unversioned ``create_all`` of old is stamped with.
BASELINE = "0001"

#: The newest revision, so that opening an up-to-date database needs no Alembic at all. A test
#: checks it against ``versions/``; were it ever stale, opens would only be slower, not wrong.
HEAD = "0013"


def _escaped(value: str) -> str:
    # Config options go through ConfigParser interpolation: a literal % is written %%.
    return value.replace("%", "%%")


def config(connection: sa.Connection | None = None, *, url: str | None = None) -> Config:
    """An Alembic configuration for the state database, run on ``connection`` (or ``url``).

    With a connection, ``env.py`` migrates inside whatever transaction the caller holds on
    it and never commits; ``url`` is only for working on revisions from a shell.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _escaped(str(LOCATION)))
    # Revision files must be importable module names (mypy checks them as part of the package).
    cfg.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", _escaped(url))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg
