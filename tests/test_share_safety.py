"""A file share under a hostile user or a careless clean-up job: links, hard links, odd names,
undeletable files and directories swapped mid-run. Nothing outside the share is touched,
nothing is certified without proof, and a problem stays with the record and policy it is on."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api, logs
from retention.connectors.files import FileShareConnector
from retention.enforce.execute import RunOutcome
from retention.errors import CatalogError
from retention.state.database import intent_batches
from retention.testing import ScratchDatabase
from retention.workspace import Workspace
from tests.test_files import put

AS_OF = date(2026, 11, 22)
WAV = "interviews/**/*.wav"
PDF = "documents/**/*.pdf"

POLICIES = """\
register: {{id: amkoodari, name: AMKoodari, controller: Metropolia, source: Seloste}}
policies:
  - id: recordings
    connector: share
    path: "{wav}"
    until: 2022-06-30
    action: delete
    legal_basis: "GDPR 6(1)(a)"
  - id: documents
    connector: share
    path: "{pdf}"
    until: 2022-06-30
    action: delete
    legal_basis: "GDPR 6(1)(c)"
"""


def make_catalog(tmp_path: Path, state_url: str, batch_size: int = 2) -> Path:
    """A catalog with one share (``<catalog>/share``) and two delete policies on it."""
    catalog = tmp_path / "catalog"
    for folder in ("policies", "connectors", "jobs"):
        (catalog / folder).mkdir(parents=True)
    (catalog / "connectors/share.yaml").write_text("id: share\nkind: files\nroot: share\n")
    (catalog / "policies/amkoodari.yaml").write_text(POLICIES.format(wav=WAV, pdf=PDF))
    (catalog / "retention.yaml").write_text(
        f"state: {state_url}\nsigning_key: keys/signing.pem\ntimezone: Europe/Helsinki\n"
        f"batch_size: {batch_size}\n"
    )
    (catalog / "share").mkdir()
    api.init(catalog, {})
    return catalog


def refs(ws: Workspace, glob: str, rels: list[str]) -> dict[str, str]:
    """Each relative path's record reference under the policy on ``glob``."""
    return {rel: ws.secret.record_ref("share", glob, (rel,)) for rel in rels}


def certified(ws: Workspace) -> set[str]:
    return {str(c["record_ref"]) for c in ws.ledger.iter_certificates()}


def pending_intents(ws: Workspace) -> int:
    with ws.state.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(intent_batches)) or 0)


def policy(outcome: RunOutcome, name: str) -> Any:
    return next(p for p in outcome.policies if p.policy == name)


def after_first_apply(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[], None], *, before: bool = False
) -> list[int]:
    """Run ``action`` once, right after the share's first batch was deleted (before its
    re-read), as a clean-up job or a hostile user would between the two; with ``before``,
    just before that batch is deleted."""
    calls: list[int] = []
    original = FileShareConnector.apply

    def apply(self: FileShareConnector, *args: Any, **kwargs: Any) -> int:
        if before and not calls:
            action()
        changed = original(self, *args, **kwargs)
        if not before and not calls:
            action()
        calls.append(changed)
        return changed

    monkeypatch.setattr(FileShareConnector, "apply", apply)
    return calls


# -- 6: an inconclusive re-read keeps its intent --------------------------------------------


class _Crash(Exception):
    """The engine dying between a batch's deletion and its re-read."""


def test_a_directory_swapped_for_a_link_before_a_reconcile_keeps_the_intents(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Files deleted by a run that died before its re-read, in a directory that is a link by
    the next run's reconcile, are neither certified nor forgotten: the next run knows only
    their paths (not the proof the dead run held), so their intents stay and the policy is
    partial (exit 4); once the directory is back a later run proves them gone and certifies
    each one."""
    catalog = make_catalog(tmp_path, state_db.url, batch_size=10)
    share = catalog / "share"
    rels = [f"interviews/2020/r{i}.wav" for i in range(3)]
    for rel in rels:
        put(share, rel)
    decoy = tmp_path / "decoy"
    for rel in rels:
        put(decoy, rel.split("/")[-1], content=b"not the share's")
    away = tmp_path / "away"

    def swap_and_die() -> None:
        (share / "interviews/2020").rename(away)
        (share / "interviews/2020").symlink_to(decoy, target_is_directory=True)
        raise _Crash

    after_first_apply(monkeypatch, swap_and_die)
    with Workspace.open(catalog, environ) as ws, pytest.raises(_Crash):
        api.run(ws, as_of=AS_OF)
    monkeypatch.undo()
    with Workspace.open(catalog, environ) as ws:
        assert pending_intents(ws) == 1
        outcome = api.run(ws, as_of=AS_OF)
        wanted = refs(ws, WAV, rels)
        recordings = policy(outcome, "recordings")
        assert outcome.exit_code == 4
        assert recordings.status == "partial"
        assert not certified(ws) & set(wanted.values())
        assert pending_intents(ws) == 1  # kept for a later reconcile
        assert all(ref in recordings.message for ref in wanted.values())
        assert "r0.wav" not in recordings.message
    assert sorted(p.name for p in decoy.iterdir()) == ["r0.wav", "r1.wav", "r2.wav"]
    assert list(away.iterdir()) == []  # the share's files were deleted before the swap
    (share / "interviews/2020").unlink()
    away.rename(share / "interviews/2020")
    with Workspace.open(catalog, environ) as ws:
        again = api.run(ws, as_of=AS_OF)
        assert again.exit_code == 0 and again.reconciled == 3
        assert set(wanted.values()) <= certified(ws)
        assert pending_intents(ws) == 0


def test_a_directory_swapped_for_a_link_after_deletion_does_not_cost_the_certificates(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Within a run the proof is in hand: each file was opened, unlinked, and seen with no
    name left, so it is certified at once, whatever its path names by the re-read; the
    files behind the link are never touched."""
    catalog = make_catalog(tmp_path, state_db.url, batch_size=10)
    share = catalog / "share"
    rels = [f"interviews/2020/r{i}.wav" for i in range(3)]
    for rel in rels:
        put(share, rel)
    decoy = tmp_path / "decoy"
    for rel in rels:
        put(decoy, rel.split("/")[-1], content=b"not the share's")

    def swap() -> None:
        (share / "interviews/2020").rename(tmp_path / "away")
        (share / "interviews/2020").symlink_to(decoy, target_is_directory=True)

    after_first_apply(monkeypatch, swap)
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        assert outcome.exit_code == 0, [p.message for p in outcome.policies]
        assert set(refs(ws, WAV, rels).values()) <= certified(ws)
        assert pending_intents(ws) == 0
    assert sorted(p.read_bytes() for p in decoy.iterdir()) == [b"not the share's"] * 3


def test_a_directory_removed_after_deletion_proves_its_files_gone(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A clean-up job removing the emptied directory before the re-read does not cost the
    certificates: a path whose directory no longer exists is proven gone."""
    catalog = make_catalog(tmp_path, state_db.url, batch_size=10)
    share = catalog / "share"
    rels = ["interviews/2020/a.wav", "interviews/2020/b.wav"]
    for rel in rels:
        put(share, rel)
    after_first_apply(monkeypatch, lambda: (share / "interviews/2020").rmdir())
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        assert outcome.exit_code == 0, [p.message for p in outcome.policies]
        assert set(refs(ws, WAV, rels).values()) == certified(ws)
        assert pending_intents(ws) == 0


# -- 7: the root and every directory are opened once, never through a link -----------------


_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> None:
    """Swap two names atomically (Linux ``renameat2(RENAME_EXCHANGE)``): the path never
    goes missing, so only the swap itself is seen, as from an attacker with good timing."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    if libc.renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second),
                      _RENAME_EXCHANGE) != 0:  # fmt: skip
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def _swap(real: Path, link: Path, go: Any) -> None:
    """A process body: once ``go`` is set, swap ``real`` with ``link`` (a link to the
    outside) for a moment every few hundred microseconds, for one second; ``real`` is in
    place at the end."""
    if not go.wait(10):
        return
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        _exchange(real, link)
        _exchange(real, link)
        time.sleep(0.0003)


@pytest.mark.parametrize("swapped", ["root", "subdirectory"])
def test_swapping_the_root_or_a_directory_for_a_link_never_reaches_outside(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch, swapped: str,
) -> None:  # fmt: skip
    """While a run deletes, the root (or a directory) is swapped for a link to an outside
    tree holding files of the same names: every outside file survives, every certified file
    is gone, and every deleted file is certified (after a later run reconciles)."""
    catalog = make_catalog(tmp_path, state_db.url, batch_size=150)
    share = catalog / "share"
    rels = [f"interviews/d{d}/r{i:03}.wav" for d in range(3) for i in range(150)]
    for rel in rels:
        put(share, rel)
    outside = tmp_path / "outside"
    if swapped == "root":
        real, decoy = share, outside
        for rel in rels:
            put(outside, rel, content=b"outside")
    else:
        real, decoy = share / "interviews/d1", outside
        for rel in rels:
            put(outside, rel.split("/")[-1], content=b"outside")
    decoys = sorted(p for p in outside.rglob("*") if p.is_file())
    forked = multiprocessing.get_context("fork")
    go = forked.Event()
    after_first_apply(monkeypatch, lambda: (go.set(), time.sleep(0.05)), before=True)
    link = tmp_path / "link"
    link.symlink_to(decoy, target_is_directory=True)
    swapper = forked.Process(target=_swap, args=(real, link, go))
    swapper.start()
    try:
        with Workspace.open(catalog, environ) as ws:
            first = api.run(ws, as_of=AS_OF)
    finally:
        go.set()
        swapper.join(15)
    assert swapper.exitcode == 0
    assert first.exit_code in (0, 4)
    assert real.is_dir() and not real.is_symlink()
    assert all(p.is_file() for p in decoys), "a file outside the share was deleted"
    monkeypatch.undo()
    with Workspace.open(catalog, environ) as ws:
        second = api.run(ws, as_of=AS_OF)
        assert second.exit_code == 0, [p.message for p in second.policies]
        done = certified(ws)
        wanted = refs(ws, WAV, rels)
        assert pending_intents(ws) == 0
    assert all(p.is_file() and p.read_bytes() == b"outside" for p in decoys)
    for rel, ref in wanted.items():
        assert not (share / rel).exists(), "every due file is deleted in the end"
        assert ref in done, "every deleted file is certified"


# -- 8, 9, 10: problems on one record stay on its policy -----------------------------------


@pytest.fixture
def logged(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Everything the test printed or logged; a test calls ``logs.configure`` itself, so the
    logs go to the stream captured while it runs."""

    def text() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err

    yield text


def test_a_hard_linked_file_is_refused_not_certified(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    logged: Callable[[], str],
) -> None:  # fmt: skip
    """A file with a second name keeps its content after an unlink: it is a problem on its
    record (no disposal, no certificate, exit 4); the policy's other files go."""
    logs.configure(json=True)
    catalog = make_catalog(tmp_path, state_db.url)
    share = catalog / "share"
    put(share, "interviews/kalle-virtanen.wav")
    put(share, "interviews/plain.wav")
    (share / "keep").mkdir()
    os.link(share / "interviews/kalle-virtanen.wav", share / "keep/copy.bin")
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        linked, plain = refs(
            ws, WAV, ["interviews/kalle-virtanen.wav", "interviews/plain.wav"]
        ).values()
        assert certified(ws) == {plain}
    recordings = policy(outcome, "recordings")
    assert outcome.exit_code == 4 and recordings.status == "partial" and recordings.disposed == 1
    assert linked in recordings.message and "hard link" in recordings.message
    assert (share / "interviews/kalle-virtanen.wav").exists()
    assert not (share / "interviews/plain.wav").exists()
    assert "kalle" not in logged() + str(recordings.message)


def test_a_hard_link_made_after_the_scan_is_refused_at_deletion(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The link count is checked again just before the unlink, not only when listing."""
    catalog = make_catalog(tmp_path, state_db.url)
    share = catalog / "share"
    put(share, "interviews/a.wav")
    original = FileShareConnector.apply

    def apply(self: FileShareConnector, *args: Any, **kwargs: Any) -> int:
        if not (share / "a-copy").exists():
            os.link(share / "interviews/a.wav", share / "a-copy")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FileShareConnector, "apply", apply)
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        assert certified(ws) == set()
        assert pending_intents(ws) == 0
    assert outcome.exit_code == 4 and policy(outcome, "recordings").status == "partial"
    assert (share / "interviews/a.wav").exists()


def test_a_name_that_is_not_utf8_is_a_problem_not_a_silence(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    logged: Callable[[], str],
) -> None:  # fmt: skip
    """A file the glob matches whose name is not UTF-8 is reported on its policy (exit 4),
    left alone, and never named; the policy's other files go."""
    logs.configure(json=True)
    catalog = make_catalog(tmp_path, state_db.url)
    share = catalog / "share"
    put(share, "interviews/ok.wav")
    odd = share / "interviews" / os.fsdecode(b"J\xe4rvinen.wav")  # Latin-1, not UTF-8
    odd.write_bytes(b"RIFF")
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        assert certified(ws) == set(refs(ws, WAV, ["interviews/ok.wav"]).values())
    recordings = policy(outcome, "recordings")
    assert outcome.exit_code == 4 and recordings.status == "partial"
    assert "not valid UTF-8" in recordings.message
    assert odd.exists() and not (share / "interviews/ok.wav").exists()
    assert "rvinen" not in logged() + str(recordings.message)


def test_a_file_that_cannot_be_deleted_fails_alone(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch, logged: Callable[[], str],
) -> None:  # fmt: skip
    """Permission denied on one file records a failure on that record; every other due
    file of the policy (and of the other policies) is still deleted and certified; exit 4."""
    logs.configure(json=True)
    catalog = make_catalog(tmp_path, state_db.url)
    share = catalog / "share"
    rels = ["interviews/a-locked.wav", "interviews/b.wav", "interviews/c.wav"]
    for rel in rels:
        put(share, rel)
    put(share, "documents/d.pdf")
    unlink = os.unlink

    def refusing(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).endswith("a-locked.wav"):
            raise PermissionError(13, "Permission denied")
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refusing)
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        wanted = refs(ws, WAV, rels)
        done = certified(ws)
    recordings = policy(outcome, "recordings")
    assert outcome.exit_code == 4 and recordings.status == "partial"
    assert recordings.disposed == 2 and policy(outcome, "documents").disposed == 1
    assert done >= {wanted["interviews/b.wav"], wanted["interviews/c.wav"]}
    assert wanted["interviews/a-locked.wav"] not in done
    assert wanted["interviews/a-locked.wav"] in recordings.message
    assert "ermission denied" in recordings.message
    assert (share / "interviews/a-locked.wav").exists()
    assert not (share / "interviews/b.wav").exists() and not (share / "documents/d.pdf").exists()
    assert "locked" not in logged() + str(recordings.message)


def test_a_link_leading_out_of_one_share_stops_only_its_policy(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    logged: Callable[[], str],
) -> None:  # fmt: skip
    """A link out of the share where a glob reaches is never followed; it is a problem on
    that policy only: the other policy runs, the run exits 4, and `check` still refuses."""
    logs.configure(json=True)
    catalog = make_catalog(tmp_path, state_db.url)
    share = catalog / "share"
    put(share, "interviews/own.wav")
    put(share, "documents/d.pdf")
    elsewhere = tmp_path / "elsewhere"
    put(elsewhere, "secret-matti.wav")
    put(elsewhere, "dir/deep.wav")
    (share / "interviews/link-matti.wav").symlink_to(elsewhere / "secret-matti.wav")
    (share / "interviews/linked-dir").symlink_to(elsewhere / "dir", target_is_directory=True)
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        link_ref = refs(ws, WAV, ["interviews/link-matti.wav"])["interviews/link-matti.wav"]
        with pytest.raises(CatalogError) as refused:
            api.check(ws)
    recordings = policy(outcome, "recordings")
    assert outcome.exit_code == 4
    assert policy(outcome, "documents").status == "completed"
    assert policy(outcome, "documents").disposed == 1
    assert recordings.status == "partial" and recordings.disposed == 1  # own.wav
    assert link_ref in recordings.message and "symbolic link" in recordings.message
    assert (elsewhere / "secret-matti.wav").exists() and (elsewhere / "dir/deep.wav").exists()
    assert (share / "interviews/link-matti.wav").is_symlink()
    checked = str(refused.value)
    assert link_ref in checked and checked.count("symbolic link") == 2
    assert "matti" not in logged() + str(recordings.message) + checked


def test_a_fifo_where_a_sidecar_should_be_never_blocks_a_run(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str]
) -> None:
    """A named pipe (or any non-regular file) as a record or a sidecar is never opened for
    reading: the run does not hang, the pipe stays, and the record is reported."""
    catalog = make_catalog(tmp_path, state_db.url)
    share = catalog / "share"
    put(share, "interviews/a.wav")
    os.mkfifo(share / "interviews/a.wav.json")
    os.mkfifo(share / "interviews/pipe.wav")
    text = (catalog / "policies/amkoodari.yaml").read_text()
    (catalog / "policies/amkoodari.yaml").write_text(
        text.replace("    until: 2022-06-30\n    action: delete\n    legal_basis: \"GDPR 6(1)(a)\"",
                     '    trigger: "sidecar:recorded_on"\n    retain: P0D\n    action: delete\n'
                     '    legal_basis: "GDPR 6(1)(a)"', 1)
    )  # fmt: skip
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
    recordings = policy(outcome, "recordings")
    assert recordings.status == "partial" and recordings.disposed == 0
    assert "not a regular file" in recordings.message
    assert (share / "interviews/a.wav").exists() and (share / "interviews/pipe.wav").exists()


def test_an_operator_finds_a_problem_record_by_its_reference(tmp_path: Path) -> None:
    """`retention run` exits 4 and names the refused file by reference only; `retention
    explain` of the path an operator found (`find -links +1`) prints the same reference."""
    import subprocess
    import sys

    from tests.conftest import SECRET

    catalog = make_catalog(tmp_path, "sqlite:///state.db")
    share = catalog / "share"
    put(share, "interviews/liisa.wav")
    os.link(share / "interviews/liisa.wav", share / "liisa-copy")
    env = {"PATH": os.environ.get("PATH", ""), "RETENTION_SECRET": SECRET}

    def retention(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "retention", *args, "--catalog", str(catalog)]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)

    ran = retention("run", "--as-of", AS_OF.isoformat())
    explained = retention("explain", "amkoodari/recordings", "interviews/liisa.wav")
    with Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws:
        ref = ws.secret.record_ref("share", WAV, ("interviews/liisa.wav",))
    assert ran.returncode == 4, ran.stderr
    assert f"record {ref} is a hard link" in ran.stdout
    assert "liisa" not in ran.stdout + ran.stderr
    assert explained.returncode == 0 and f"reference: {ref}" in explained.stdout


def test_of_several_problems_of_one_record_the_strongest_decides() -> None:
    """A record the share says it did not dispose of is never left waiting for a reconcile
    that could later certify it, even if the re-read could not tell either."""
    from retention.connectors.base import RecordProblem
    from retention.decide import problems
    from retention.pseudonym import Secret
    from tests.conftest import SECRET

    class Reported:
        def problems(self) -> list[RecordProblem]:
            return [
                RecordProblem(("a.wav",), "could not be reached to delete it"),
                RecordProblem(("a.wav",), "cannot be confirmed gone", "unknown"),
                RecordProblem(("b.wav",), "sidecar left", "disposed"),
                RecordProblem(("b.wav",), "cannot be confirmed gone", "unknown"),
            ]

    noted: list[problems.Noted] = []
    found = problems.collect(Secret(SECRET.encode()), Reported(), "share", WAV, noted, "p")  # type: ignore[arg-type]
    assert {k: p.effect for k, p in found.items()} == {'["a.wav"]': "kept", '["b.wav"]': "unknown"}
    assert len(noted) == 4 and all(len(n.record_ref) == 64 for n in noted)
