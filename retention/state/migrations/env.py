"""Alembic's environment for the state database (run by Alembic, never imported).

:func:`retention.state.database.open_state` passes its connection through
``config.attributes["connection"]``, already inside a transaction: the migrations join that
transaction and this file neither begins nor commits one. Without a connection (working on
revisions from a shell) it connects to the ``sqlalchemy.url`` option, or writes SQL offline.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy.pool import NullPool

from retention.state.database import metadata


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: autogenerate writes "move and copy" batches there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, sa.Connection):
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no connection in config.attributes and no sqlalchemy.url option")
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
