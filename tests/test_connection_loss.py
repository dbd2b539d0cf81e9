"""A source that goes away mid-run: that policy fails cleanly, finished batches stay certified."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.connectors.sql import SqlConnector
from retention.errors import EXIT_PARTIAL
from retention.testing import ScratchDatabase, scratch_database, server_url
from retention.workspace import Workspace
from tests.conftest import AS_OF, _require, build_sources, write_catalog


@pytest.fixture
def source_role(tmp_path: Path) -> Iterator[tuple[ScratchDatabase, str, sa.Engine]]:
    """A PostgreSQL source schema reached through a role of its own that can be shut out."""
    _require("postgresql")
    admin = sa.create_engine(server_url("postgresql"), isolation_level="AUTOCOMMIT")
    role = "rt_role_" + secrets.token_hex(4)
    with scratch_database("postgresql", tmp_path) as db:
        build_sources(db.url)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
            conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{db.name}" TO "{role}"'))
            conn.execute(sa.text(f'GRANT ALL ON ALL TABLES IN SCHEMA "{db.name}" TO "{role}"'))
        try:
            yield db, role, admin
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"
                ), {"r": role})  # fmt: skip
                conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
                conn.execute(sa.text(f'DROP ROLE "{role}"'))
    admin.dispose()


def test_losing_the_source_mid_run_fails_that_policy_and_keeps_the_evidence(
    tmp_path: Path,
    source_role: tuple[ScratchDatabase, str, sa.Engine],
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server drops the connection after a batch: exit 4, certified work kept, rerun ends it."""
    db, role, admin = source_role
    url = sa.engine.make_url(db.url).set(username=role).render_as_string(hide_password=False)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    catalog = write_catalog(tmp_path / "catalog", url, state)
    applied = [0]
    original = SqlConnector.apply_reported

    def apply_then_lose_the_server(self: SqlConnector, *args: Any) -> Any:
        applied[0] += 1
        if applied[0] == 4:  # the second batch of the alumni policy
            with admin.connect() as conn:
                conn.execute(sa.text(f'ALTER ROLE "{role}" NOLOGIN'))
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"
                ), {"r": role})  # fmt: skip
        return original(self, *args)

    monkeypatch.setattr(SqlConnector, "apply_reported", apply_then_lose_the_server)
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        certs = list(ws.ledger.iter_certificates())
        assert api.verify_ledger(ws).ok
    by_policy = {p.policy: p for p in outcome.policies}
    assert outcome.exit_code == EXIT_PARTIAL
    assert by_policy["interviewees"].status == "completed"
    assert by_policy["interviewees"].disposed == 3
    failed = by_policy["alumni-membership"]
    assert failed.status == "failed" and failed.disposed == 2  # the first batch was certified
    assert "connector crm" in (failed.message or "")
    assert len(certs) == 5
    monkeypatch.setattr(SqlConnector, "apply_reported", original)
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER ROLE "{role}" LOGIN'))
    with Workspace.open(catalog, environ) as ws:
        again = api.run(ws, as_of=AS_OF)
        certs = list(ws.ledger.iter_certificates())
        assert api.verify_ledger(ws).ok
    assert again.exit_code == 0
    assert len(certs) == 9 and len({c["record_ref"] for c in certs}) == 9
