"""A share file replaced at its path while a run deletes it: only the file that was listed
and decided on is ever unlinked, and a file proven unlinked is certified whatever appears at
its path afterwards."""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from retention import api
from retention.catalog.model import FilesSource
from retention.connectors import build
from retention.connectors.base import Delete
from retention.connectors.files import FileShareConnector
from retention.testing import ScratchDatabase
from retention.workspace import Workspace
from tests.test_files import put, records, select
from tests.test_share_safety import (
    after_first_apply,
    certified,
    make_catalog,
    pending_intents,
    policy,
    refs,
)

AS_OF = date(2026, 11, 22)
WAV = "interviews/**/*.wav"
OLD = datetime(2011, 1, 1)  # due under P1Y on AS_OF
NEW = datetime(2026, 11, 1)  # not due for a year

BY_MTIME = """\
register: {id: amkoodari, name: AMKoodari, controller: Metropolia, source: Seloste}
policies:
  - id: recordings
    connector: share
    path: "interviews/**/*.wav"
    trigger: mtime
    retain: P1Y
    action: delete
    max_due_share: 1.0
    legal_basis: "GDPR 6(1)(a)"
"""


def mtime_catalog(tmp_path: Path, state_url: str, batch_size: int) -> Path:
    """The share catalog with one policy: a recording is due a year after its mtime."""
    catalog = make_catalog(tmp_path, state_url, batch_size=batch_size)
    (catalog / "policies/amkoodari.yaml").write_text(BY_MTIME)
    return catalog


def _stamp(path: Path, moment: datetime) -> None:
    stamp = moment.replace(tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))


def test_a_file_saved_over_the_due_one_as_it_is_deleted_is_left_alone(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An application saves a new version atomically (a temporary file renamed over the
    old one) in the instant between the re-check and the unlink: the new version is not
    the file decided on, so it is not deleted and the old record gets no certificate."""
    catalog = mtime_catalog(tmp_path, state_db.url, batch_size=10)
    share = catalog / "share"
    due = put(share, "interviews/2010/a.wav", mtime=OLD)
    put(share, "interviews/2010/b.wav", mtime=OLD)
    original = FileShareConnector._delete

    def resaving(self: FileShareConnector, rel: str, *args: Any, **kwargs: Any) -> bool:
        if rel == "interviews/2010/a.wav":
            temporary = due.with_name("a.wav.tmp~")
            temporary.write_bytes(b"the version saved today")
            _stamp(temporary, NEW)
            temporary.replace(due)
        return original(self, rel, *args, **kwargs)

    monkeypatch.setattr(FileShareConnector, "_delete", resaving)
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        wanted = refs(ws, WAV, ["interviews/2010/a.wav", "interviews/2010/b.wav"])
        done = certified(ws)
        assert pending_intents(ws) == 0
    recordings = policy(outcome, "recordings")
    assert due.read_bytes() == b"the version saved today", "the new version was deleted"
    assert wanted["interviews/2010/a.wav"] not in done
    assert (
        wanted["interviews/2010/b.wav"] in done and not (share / "interviews/2010/b.wav").exists()
    )
    assert outcome.exit_code == 4 and recordings.status == "partial"
    assert wanted["interviews/2010/a.wav"] in recordings.message
    assert "replaced" in recordings.message and "a.wav" not in recordings.message


def test_a_file_created_at_the_path_after_the_unlink_does_not_cost_the_certificate(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A sync client re-creates a document at the path just after the unlink, before the
    re-read: the decided file was proven unlinked, so it is certified; the newcomer is a new
    record, left alone for a later run to decide."""
    catalog = mtime_catalog(tmp_path, state_db.url, batch_size=10)
    share = catalog / "share"
    path = put(share, "interviews/2010/a.wav", mtime=OLD)
    original = FileShareConnector._delete

    def recreating(self: FileShareConnector, rel: str, *args: Any, **kwargs: Any) -> bool:
        deleted = original(self, rel, *args, **kwargs)
        path.write_bytes(b"a new document, saved today")
        return deleted

    monkeypatch.setattr(FileShareConnector, "_delete", recreating)
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        ref = refs(ws, WAV, ["interviews/2010/a.wav"])["interviews/2010/a.wav"]
        assert ref in certified(ws), "the destroyed record has no certificate"
        assert pending_intents(ws) == 0
    assert outcome.exit_code == 0, [p.message for p in outcome.policies]
    assert policy(outcome, "recordings").disposed == 1
    assert path.read_bytes() == b"a new document, saved today"


def test_a_due_file_put_in_place_of_the_listed_one_is_not_deleted(tmp_path: Path) -> None:
    """Another file renamed over a listed one, even an old one that is due as well (copied
    with its modification time kept), is not the file decided on: it stays, as a problem on
    its record; the listed file is forgotten once its batch is applied."""
    root = tmp_path / "share"
    connector = build(FilesSource(id="share", kind="files", root=str(root)), str(root))
    assert isinstance(connector, FileShareConnector)
    put(root, "interviews/a.wav", mtime=OLD, content=b"listed")
    put(root, "interviews/b.wav", mtime=OLD, content=b"listed")
    selection = select(triggers=("mtime",), bound=date(2012, 1, 1))
    listed = records(connector, selection)
    assert sorted(listed) == ["interviews/a.wav", "interviews/b.wav"]
    other = put(root, "elsewhere/a.wav", mtime=OLD, content=b"another file, just as old")
    other.replace(root / "interviews/a.wav")
    keys = [(rel,) for rel in sorted(listed)]
    assert connector.apply(selection, keys, Delete()) == 1
    assert (root / "interviews/a.wav").read_bytes() == b"another file, just as old"
    assert not (root / "interviews/b.wav").exists()
    problems = connector.problems()
    assert [(p.key, p.effect) for p in problems] == [(("interviews/a.wav",), "kept")]
    assert "replaced" in problems[0].problem
    assert connector.reread(selection, keys, []) == {
        ("interviews/a.wav",): {"path": "interviews/a.wav"}
    }
    assert connector._decided == {}


def test_a_file_swapped_in_at_the_instant_of_the_unlink_is_reported_never_certified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the check and the unlink (no system call does both) the decided file is moved
    away and another put at its name: that other file is what the unlink removes. The held
    file still has a name afterwards, so the record is a problem and is not called gone."""
    root = tmp_path / "share"
    connector = build(FilesSource(id="share", kind="files", root=str(root)), str(root))
    assert isinstance(connector, FileShareConnector)
    put(root, "interviews/a.wav", mtime=OLD, content=b"decided")
    selection = select(triggers=("mtime",), bound=date(2012, 1, 1))
    assert list(records(connector, selection)) == ["interviews/a.wav"]
    unlink = os.unlink

    def swapping(path: Any, *args: Any, **kwargs: Any) -> None:
        if path == "a.wav":
            (root / "interviews/a.wav").rename(root / "moved.wav")
            (root / "interviews/a.wav").write_bytes(b"someone else's")
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", swapping)
    assert connector.apply(selection, [("interviews/a.wav",)], Delete()) == 0
    monkeypatch.undo()
    problems = connector.problems()
    assert [(p.key, p.effect) for p in problems] == [(("interviews/a.wav",), "kept")]
    assert "another file at its name was deleted" in problems[0].problem
    assert (root / "moved.wav").read_bytes() == b"decided"
    assert connector._unlinked == set()


def _swap_folders(share: Path, names: list[str], go: Any, stop: Any) -> None:
    """A process body: once ``go`` is set, swap each ``dNN`` folder with its ``freshNN``
    by renames (as a sync client or a clean-up job would), round and round, until ``stop``
    or two seconds; every folder is back in place at the end."""
    if not go.wait(10):
        return
    deadline = time.monotonic() + 2.0
    while not stop.is_set() and time.monotonic() < deadline:
        for name in names:
            old, fresh = share / name, share / f"fresh{name[1:]}"
            aside = share / f"{name}.aside"
            old.rename(aside)
            fresh.rename(old)
            time.sleep(0.0002)
            old.rename(fresh)
            aside.rename(old)


def test_folders_swapped_by_rename_during_a_run_lose_no_file_unproven(
    tmp_path: Path, state_db: ScratchDatabase, environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """While a run deletes, each folder of due files is swapped, again and again, with a
    folder of files not due under the same names. No file that is not due is deleted, and
    every due file that is gone is certified or keeps its intent for the next run."""
    catalog = mtime_catalog(tmp_path, state_db.url, batch_size=40)
    share = catalog / "share" / "interviews"
    names = [f"d{d}" for d in range(4)]
    rels = [f"{n}/r{i:03}.wav" for n in names for i in range(120)]
    for rel in rels:
        put(share, rel, mtime=OLD, content=b"due " + rel.encode())
        put(share, f"fresh{rel[1:]}", mtime=NEW, content=b"not due")
    fresh = sorted(share.glob("fresh*/*.wav"))
    forked = multiprocessing.get_context("fork")
    go, stop = forked.Event(), forked.Event()
    after_first_apply(monkeypatch, go.set, before=True)
    swapper = forked.Process(target=_swap_folders, args=(share, names, go, stop))
    swapper.start()
    try:
        with Workspace.open(catalog, environ) as ws:
            outcome = api.run(ws, as_of=AS_OF)
    finally:
        go.set()
        stop.set()
        swapper.join(15)
    assert swapper.exitcode == 0
    assert outcome.exit_code in (0, 4)
    assert all(p.is_file() and p.read_bytes() == b"not due" for p in fresh), (
        "a file not due was deleted"
    )
    destroyed = [rel for rel in rels if not (share / rel).exists()]
    assert destroyed, "the run deleted due files"
    monkeypatch.undo()
    with Workspace.open(catalog, environ) as ws:  # settles the intents the first run kept
        again = api.run(ws, as_of=AS_OF)
        done = certified(ws)
        wanted = refs(ws, WAV, [f"interviews/{rel}" for rel in destroyed])
        assert pending_intents(ws) == 0
    assert again.exit_code == 0, [p.message for p in again.policies]
    unproven = [rel for rel in destroyed if wanted[f"interviews/{rel}"] not in done]
    assert not unproven, f"{len(unproven)} files deleted without a certificate"
