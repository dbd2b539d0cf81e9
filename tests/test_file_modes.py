"""What holds personal data or secrets is created 0600 (files) / 0700 (directories) whatever
the umask: archive packages, the SQLite state database and its directory, the signing key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from retention import api
from retention.filemodes import create_private_file, private_dirs, write_private
from retention.workspace import Workspace
from tests.conftest import SECRET
from tests.test_archive import AS_OF, POLICIES, build


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_state_key_and_archive_packages_are_private(tmp_path: Path, umask: int) -> None:
    """`init` makes the state directory 0700 and its database 0600, the key directory 0700 and
    the private key 0600; a run's archive package (and the archive directory it makes) holds
    only 0700 directories and 0600 files."""
    build(f"sqlite:///{tmp_path / 'source.db'}")
    root = tmp_path / "catalog"
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True)
    (root / "policies" / "karelia.yaml").write_text(POLICIES, encoding="utf-8")
    (root / "connectors" / "src.yaml").write_text(
        f"id: src\nkind: sql\nurl: sqlite:///{tmp_path / 'source.db'}\n", encoding="utf-8"
    )
    (root / "retention.yaml").write_text(
        "state: sqlite:///state/retention.db\narchive: vault/archive\n"
        "signing_key: keys/signing.pem\n",
        encoding="utf-8",
    )
    api.init(root, {})
    assert mode(root / "state") == 0o700
    assert mode(root / "state" / "retention.db") == 0o600
    assert mode(root / "keys") == 0o700 and mode(root / "keys" / "signing.pem") == 0o600
    with Workspace.open(root, {"RETENTION_SECRET": SECRET}) as ws:
        outcome = api.run(ws, as_of=AS_OF)
    assert outcome.exit_code == 0 and any(p.archived for p in outcome.policies)
    assert mode(root / "state" / "retention.db") == 0o600
    vault = root / "vault"
    assert mode(vault) == 0o700 and mode(vault / "archive") == 0o700
    packages = list((vault / "archive").iterdir())
    assert packages
    for package in packages:
        found = [package, *package.rglob("*")]
        assert any(p.name.endswith(".json") for p in found)  # the records themselves
        for path in found:
            assert mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_existing_directories_and_files_keep_their_modes(tmp_path: Path, umask: int) -> None:
    """Only what retention creates is made private: an operator's directory is left as it is."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    private_dirs(shared / "a" / "b")
    assert mode(shared) == 0o755 and mode(shared / "a") == mode(shared / "a" / "b") == 0o700
    assert create_private_file(shared / "a" / "f") and mode(shared / "a" / "f") == 0o600
    assert not create_private_file(shared / "a" / "f")
    write_private(shared / "secret", b"s3cret\n")
    assert mode(shared / "secret") == 0o600
    assert (shared / "secret").read_bytes() == b"s3cret\n"


def test_plan_reports_are_their_owners_only(tmp_path: Path) -> None:
    """A plan report lists records by key (a student number, a file name): written 0600
    in a 0700 folder retention makes, whatever the umask, as the CLI writes them."""
    from tests.test_cli import DAY, make_catalog, on

    sq = make_catalog(tmp_path / "sq")
    old = os.umask(0)
    try:
        reports = tmp_path / "new-reports"
        paths = [reports / f"plan.{ext}" for ext in ("json", "csv", "html")]
        args = [a for p in paths for a in ("--report", str(p))]
        planned = on(sq, "plan", "--as-of", DAY, *args)
        assert planned.returncode == 0, planned.stderr
    finally:
        os.umask(old)
    assert stat.S_IMODE(reports.stat().st_mode) == 0o700
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
