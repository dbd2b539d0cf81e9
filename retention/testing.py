"""Test helpers for the engine and for connector authors: throw-away databases on real servers.

Each :class:`ScratchDatabase` is a fresh, empty namespace on one backend — a file for
SQLite, a schema (through ``search_path``) on PostgreSQL, a database on MariaDB — dropped
afterwards, so tests run in parallel against the same servers without seeing each other.
Server URLs come from ``RETENTION_TEST_POSTGRESQL`` and ``RETENTION_TEST_MARIADB``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

BACKENDS = ("sqlite", "postgresql", "mariadb")
DEFAULT_SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}


def server_url(backend: str) -> str:
    return os.environ.get(f"RETENTION_TEST_{backend.upper()}", DEFAULT_SERVERS[backend])


@dataclass(frozen=True)
class ScratchDatabase:
    backend: str
    url: str
    name: str

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url)


def server_problem(backend: str) -> str | None:
    """None when the backend's server answers, else why not."""
    if backend == "sqlite":
        return None
    try:
        engine = sa.create_engine(server_url(backend))
        with engine.connect():
            pass
        engine.dispose()
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        return f"{backend} server at {server_url(backend)} is not reachable: {exc}"
    return None


@contextmanager
def scratch_database(backend: str, directory: Path) -> Iterator[ScratchDatabase]:
    """A fresh empty database namespace on ``backend``, removed on exit."""
    name = "rt_" + secrets.token_hex(5)
    if backend == "sqlite":
        yield ScratchDatabase(backend, f"sqlite:///{directory / (name + '.db')}", name)
        return
    admin = sa.create_engine(server_url(backend), isolation_level="AUTOCOMMIT")
    base = sa.engine.make_url(server_url(backend))
    quoted = admin.dialect.identifier_preparer.quote(name)
    if backend == "postgresql":
        ddl_create, ddl_drop = f"CREATE SCHEMA {quoted}", f"DROP SCHEMA {quoted} CASCADE"
        url = base.update_query_dict({"options": f"-csearch_path={name}"})
        rendered = url.render_as_string(hide_password=False)
    else:
        ddl_create, ddl_drop = f"CREATE DATABASE {quoted}", f"DROP DATABASE {quoted}"
        rendered = base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(ddl_create))
    try:
        yield ScratchDatabase(backend, rendered, name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(ddl_drop))
        admin.dispose()


def quote_url(url: str) -> str:
    """A URL made safe to embed in YAML text."""
    return quote(url, safe=":/@?=&+-_.%")
