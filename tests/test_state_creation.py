"""Only `retention init` creates a state database: a typo in the state URL is an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.errors import EXIT_INVALID
from retention.state.database import StateNotInitialised, open_state
from retention.testing import scratch_database
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET


def point_state_at(catalog: Path, url: str) -> None:
    """Rewrite the catalog's settings so its state is ``url``."""
    settings = catalog / "retention.yaml"
    lines = settings.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith("state:")]
    settings.write_text("\n".join([f"state: {url}", *kept]) + "\n", encoding="utf-8")


def table_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def with_password(url: str, backend: str) -> str:
    """The URL with a password in it (PostgreSQL's trust ignores it), to see it masked."""
    if backend != "postgresql":
        return url
    parsed = sa.engine.make_url(url).set(password="hunter2-secret")
    return parsed.render_as_string(hide_password=False)


def test_run_refuses_a_missing_or_empty_state_database_and_creates_nothing(
    catalog: Path, backend: str, tmp_path: Path
) -> None:
    """`run` on a state URL nobody initialised (a typo, an unset variable) exits 2 naming
    the URL with its password masked, says to run `retention init`, disposes of nothing and
    creates neither a SQLite file nor a table."""
    with scratch_database(backend, tmp_path / "typo") as empty:
        url = empty.url if backend != "sqlite" else f"sqlite:///{tmp_path / 'state-typo.db'}"
        url = with_password(url, backend)
        point_state_at(catalog, url)
        env = {"PATH": os.environ.get("PATH", ""), "RETENTION_SECRET": SECRET}
        cmd = [sys.executable, "-m", "retention", "run", "--catalog", str(catalog),
               "--as-of", AS_OF.isoformat(), "--policy", "interviewees"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        assert proc.returncode == EXIT_INVALID, proc.stderr
        assert "retention init" in proc.stderr
        assert "hunter2" not in proc.stderr + proc.stdout
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
        assert shown in proc.stderr
        if backend == "sqlite":
            assert not (tmp_path / "state-typo.db").exists()
        else:
            assert table_names(empty.url) == []
        with (
            Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws,
            pytest.raises(StateNotInitialised, match="retention init"),
        ):
            _ = ws.state
    if backend == "sqlite":
        assert not (tmp_path / "state-typo.db").exists()


def test_only_create_makes_a_state_database(tmp_path: Path) -> None:
    """open_state refuses a missing SQLite file without making it; with create it makes it,
    and afterwards opens it without create."""
    path = tmp_path / "new.db"
    with pytest.raises(StateNotInitialised):
        open_state(f"sqlite:///{path}")
    assert not path.exists()
    open_state(f"sqlite:///{path}", create=True).dispose()
    open_state(f"sqlite:///{path}").dispose()
    assert path.exists()


def test_a_password_in_the_url_query_is_masked_too() -> None:
    from retention.state.database import masked

    shown = masked("postgresql://postgres@127.0.0.1:5432/db?password=TopSecretPw&sslmode=require")
    assert "TopSecretPw" not in shown and "sslmode=require" in shown
    assert "pw" not in masked("postgresql://user:pw@host/db").split("@")[0].split(":")[-1]
