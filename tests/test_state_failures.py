"""A state database that is read-only or full ends a command with the cause and what to do,
never with "unexpected failure: OperationalError" (SQLite, PostgreSQL and MariaDB)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.cli import main
from retention.state.database import state_failure
from retention.testing import quote_url
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET
from tests.test_cli import PERSONAL
from tests.test_engine import source_rows


def read_only(url: str, backend: str) -> str:
    """The same server database, opened so that it refuses every write (SQLite: see
    :func:`sqlite_pragma`, as the tests run as root, whom file modes do not stop)."""
    parsed = sa.engine.make_url(url)
    if backend == "sqlite":
        return url
    if backend == "postgresql":
        options = f"{parsed.query['options']} -cdefault_transaction_read_only=on"
        parsed = parsed.update_query_dict({"options": options})
    else:
        parsed = parsed.update_query_dict({"init_command": "SET SESSION TRANSACTION READ ONLY"})
    return parsed.render_as_string(hide_password=False)


def set_state(catalog: Path, url: str) -> None:
    settings = catalog / "retention.yaml"
    lines = [
        f"state: {quote_url(url)}" if line.startswith("state:") else line
        for line in settings.read_text(encoding="utf-8").splitlines()
    ]
    settings.write_text("\n".join(lines) + "\n", encoding="utf-8")


def command(catalog: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the command line in this process; its exit code and its error stream."""
    with pytest.raises(SystemExit) as ended:
        main([*args, "--catalog", str(catalog)])
    return int(ended.value.code or 0), capsys.readouterr().err


def test_a_read_only_state_database_is_named_with_what_to_do(
    catalog: Path,
    environ: dict[str, str],
    backend: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`run` and `hold add` on a state database that refuses writes: exit 1, the cause and the
    remedy, no personal data, nothing disposed of."""
    monkeypatch.setenv("RETENTION_SECRET", SECRET)
    with Workspace.open(catalog, environ) as ws:
        url, before = ws.catalog.state_url, source_rows(ws)
    set_state(catalog, read_only(url, backend))
    sqlite_file = Path(str(sa.engine.make_url(url).database)) if backend == "sqlite" else None
    with sqlite_pragma(sqlite_file, "PRAGMA query_only = ON"):
        code, err = command(catalog, capsys, "run", "--as-of", AS_OF.isoformat())
        assert code == 1, err
        assert "the state database is read-only" in err and "writable" in err
        assert "unexpected failure" not in err
        code, err = command(catalog, capsys, "hold", "add", "--subject", "010190-900A",
                            "--reason", "court case")  # fmt: skip
        assert code == 1 and "read-only" in err, err
    assert not any(value in err for value in PERSONAL)
    set_state(catalog, url)
    with Workspace.open(catalog, environ) as ws:
        assert source_rows(ws) == before


@contextmanager
def sqlite_pragma(path: Path | None, pragma: str) -> Iterator[None]:
    """Every new SQLite connection to ``path`` runs ``pragma`` first (``{pages}``: the file's
    page count then)."""

    def apply(dbapi: Any, _record: Any) -> None:
        if isinstance(dbapi, sqlite3.Connection):
            (_, _, name) = dbapi.execute("PRAGMA database_list").fetchone()
            if Path(name) == path:
                pages = int(dbapi.execute("PRAGMA page_count").fetchone()[0])
                dbapi.execute(pragma.format(pages=pages))

    sa.event.listen(sa.engine.Engine, "connect", apply)
    try:
        yield
    finally:
        sa.event.remove(sa.engine.Engine, "connect", apply)


def full_after(path: Path) -> AbstractContextManager[None]:
    """SQLite connections to ``path`` may not grow the file by a single page."""
    with sqlite3.connect(path) as packed:  # no free pages left to fill
        packed.execute("VACUUM")
    return sqlite_pragma(path, "PRAGMA max_page_count = {pages}")


def test_a_full_state_database_is_named_and_the_next_run_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state database that cannot grow (disk full, simulated with max_page_count): exit 1
    naming the cause; once there is room, the next run finishes and the ledger verifies."""
    from tests.test_cli import make_catalog

    monkeypatch.setenv("RETENTION_SECRET", SECRET)
    cat = make_catalog(tmp_path)
    with full_after(cat.state):
        code, err = command(cat.root, capsys, "run", "--as-of", AS_OF.isoformat())
    assert code == 1, err
    assert "the state database is full" in err and "free space" in err
    assert "unexpected failure" not in err
    code, err = command(cat.root, capsys, "run", "--as-of", AS_OF.isoformat())
    assert code == 0, err
    with Workspace.open(cat.root, {"RETENTION_SECRET": SECRET}) as ws:
        assert api.verify_ledger(ws).ok


def test_other_driver_errors_are_not_mistaken_for_state_failures() -> None:
    """Only a read-only, full or unopenable database is named; anything else stays unexpected."""
    locked = sa.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: x"))
    assert state_failure(locked) is None
    assert state_failure(ValueError("x")) is None
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    named = state_failure(sa.exc.OperationalError("INSERT", {}, full))
    assert named is not None and "full" in str(named)
