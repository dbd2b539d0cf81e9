"""The file-share connector (``kind: files``) against real files in a temporary directory."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from retention import api
from retention.catalog.globs import compile_glob, globs_may_overlap
from retention.catalog.model import FilesSource
from retention.connectors import build
from retention.connectors.base import Anonymise, Condition, Delete, Record, Selection
from retention.connectors.files import FileShareConnector, ShareError
from retention.errors import CatalogError, RetentionError, SourceUnavailable
from retention.pseudonym import Secret
from retention.workspace import Workspace
from tests.conftest import SECRET

WAV = "interviews/**/*.wav"


def put(
    root: Path,
    rel: str,
    sidecar: dict[str, Any] | str | None = None,
    mtime: datetime | None = None,
    content: bytes = b"RIFF....WAVE",
) -> Path:
    """Write a file (and its sidecar, raw text if a string) under ``root``."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if sidecar is not None:
        text = sidecar if isinstance(sidecar, str) else json.dumps(sidecar)
        Path(f"{path}.json").write_text(text, encoding="utf-8")
    if mtime is not None:
        stamp = mtime.replace(tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
    return path


def select(**kwargs: Any) -> Selection:
    """A selection of the recordings glob keyed by path, with ``kwargs`` on top."""
    return Selection(**{"table": WAV, "key": ("path",), **kwargs})


def keys(share: FileShareConnector, selection: Selection, batch_size: int = 100) -> list[str]:
    """The candidates' paths in the order the connector streams them."""
    return [r.key[0] for page in share.candidates(selection, batch_size) for r in page]


def records(share: FileShareConnector, selection: Selection) -> dict[str, Record]:
    """The candidates by path."""
    return {r.key[0]: r for page in share.candidates(selection, 100) for r in page}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty share root."""
    path = tmp_path / "share"
    path.mkdir()
    return path


@pytest.fixture
def share(root: Path) -> FileShareConnector:
    """A connector on ``root``, built the way the workspace builds it."""
    connector = build(FilesSource(id="share", kind="files", root=str(root)), str(root))
    assert isinstance(connector, FileShareConnector)
    return connector


def test_describe_has_fixed_and_dynamic_columns(root: Path, share: FileShareConnector) -> None:
    """describe() keys by path and resolves sidecar fields and path regexes by their values."""
    put(root, "interviews/a.wav", {"interviewed_on": "2020-03-02", "school": "metropolia"})
    info = share.describe(WAV)
    assert info.primary_key == ("path",) and info.is_unique(["path"])
    assert [info.columns[c].kind for c in ("path", "mtime", "size")] == [
        "string",
        "datetime",
        "integer",
    ]

    def kind(name: str) -> str | None:
        column = info.column(name)
        return None if column is None else column.kind

    assert kind("sidecar:interviewed_on") == "date"
    assert kind("sidecar:school") == "string"
    assert kind("sidecar:consent_withdrawn_on") == "date"  # in no sidecar yet: empty dates
    assert kind(r"path:(?P<date>\d{8})") == "date"
    assert kind(r"path:(\d{8})") is None  # no `date` group
    assert kind("path:(") is None  # does not compile
    assert kind("owner") is None
    assert share.duplicate_keys(WAV, ["path"]) == 0
    assert share.capabilities.anonymise is False and share.capabilities.reread is True
    with pytest.raises(LookupError):
        share.describe("../elsewhere/*.wav")


def test_ping_refuses_a_missing_root(tmp_path: Path) -> None:
    """ping() raises SourceUnavailable when the root is not a directory."""
    missing = FileShareConnector(FilesSource(id="s", kind="files", root="x"), str(tmp_path / "x"))
    with pytest.raises(SourceUnavailable, match="not reachable"):
        missing.ping()
    (tmp_path / "f").write_text("not a directory")
    a_file = FileShareConnector(FilesSource(id="s", kind="files", root="f"), str(tmp_path / "f"))
    with pytest.raises(SourceUnavailable, match="not a directory"):
        a_file.ping()


def test_glob_order_batches_and_sidecars(root: Path, share: FileShareConnector) -> None:
    """Without triggers every matching file is a candidate, in path order, in batches."""
    for rel in [
        "interviews/b.wav",
        "interviews/a.wav",
        "interviews/x/y/c.wav",
        "interviews/a-z.wav",
    ]:
        put(root, rel, {"interviewed_on": "2020-01-01"})
    put(root, "interviews/notes.txt")
    put(root, "other/d.wav")
    pages = list(share.candidates(select(), 2))
    assert [len(p) for p in pages] == [2, 2]
    assert [r.key for p in pages for r in p] == [
        ("interviews/a-z.wav",),
        ("interviews/a.wav",),
        ("interviews/b.wav",),
        ("interviews/x/y/c.wav",),
    ]
    everything = Selection(table="**", key=("path",))
    assert keys(share, everything) == [
        "interviews/a-z.wav",
        "interviews/a.wav",
        "interviews/b.wav",
        "interviews/notes.txt",
        "interviews/x/y/c.wav",
        "other/d.wav",
    ]  # the .json sidecars are never records, although `**` matches them
    assert share.count(everything, candidates_only=False) == 6


def test_mtime_trigger_on_the_boundary_day(root: Path, share: FileShareConnector) -> None:
    """An mtime trigger is the file's UTC day; a candidate's day is before the bound."""
    put(root, "interviews/late.wav", mtime=datetime(2020, 3, 2, 23, 59, 59))
    put(root, "interviews/next.wav", mtime=datetime(2020, 3, 3, 0, 0, 0))
    on_day = select(triggers=("mtime",), bound=date(2020, 3, 2), columns=("mtime", "size"))
    assert keys(share, on_day) == []
    day_after = select(triggers=("mtime",), bound=date(2020, 3, 3), columns=("mtime", "size"))
    found = records(share, day_after)
    assert list(found) == ["interviews/late.wav"]
    assert found["interviews/late.wav"].trigger == date(2020, 3, 2)
    assert found["interviews/late.wav"].values == {
        "mtime": datetime(2020, 3, 2, 23, 59, 59),
        "size": len(b"RIFF....WAVE"),
    }
    assert share.count(day_after, candidates_only=True) == 1
    assert share.count(day_after, candidates_only=False) == 2
    # No bound (an erasure request): every matching file, due or not.
    assert keys(share, select(triggers=("mtime",), bound=None)) == [
        "interviews/late.wav",
        "interviews/next.wav",
    ]


def test_sidecar_trigger_on_the_boundary_day(root: Path, share: FileShareConnector) -> None:
    """A sidecar date is due only when it is before the bound; no sidecar means no clock."""
    put(root, "interviews/a.wav", {"interviewed_on": "2020-03-02"})
    put(root, "interviews/b.wav", {"interviewed_on": "2020-03-03"})
    put(root, "interviews/c.wav")
    put(root, "interviews/d.wav", {"interviewed_on": "not a date"})
    trigger = ("sidecar:interviewed_on",)
    assert keys(share, select(triggers=trigger, bound=date(2020, 3, 2))) == []
    found = records(share, select(triggers=trigger, bound=date(2020, 3, 3)))
    assert list(found) == ["interviews/a.wav"]
    assert found["interviews/a.wav"].trigger == date(2020, 3, 2)
    assert keys(share, select(triggers=trigger, bound=date(2020, 3, 4))) == [
        "interviews/a.wav",
        "interviews/b.wav",
    ]


def test_path_trigger_in_both_date_forms(root: Path, share: FileShareConnector) -> None:
    """A path regex's `date` group gives the trigger, as YYYY-MM-DD or YYYYMMDD."""
    put(root, "interviews/2020-03-02/a.wav")
    put(root, "interviews/rec-20200303.wav")
    put(root, "interviews/rec-20201399.wav")  # not a calendar date: no clock
    trigger = (r"path:(?P<date>\d{4}-?\d{2}-?\d{2})",)
    assert keys(share, select(triggers=trigger, bound=date(2020, 3, 2))) == []
    assert keys(share, select(triggers=trigger, bound=date(2020, 3, 3))) == [
        "interviews/2020-03-02/a.wav"
    ]
    found = records(share, select(triggers=trigger, bound=date(2020, 3, 4)))
    assert {k: r.trigger for k, r in found.items()} == {
        "interviews/2020-03-02/a.wav": date(2020, 3, 2),
        "interviews/rec-20200303.wav": date(2020, 3, 3),
    }


def test_match_and_subject_on_sidecar_fields(root: Path, share: FileShareConnector) -> None:
    """match: filters on sidecar values by equality or membership; subject on one person."""
    put(root, "interviews/a.wav", {"school": "metropolia", "email": "a@example.fi"})
    put(root, "interviews/b.wav", {"school": "laurea", "email": "b@example.fi"})
    put(root, "interviews/c.wav", {"school": "xamk", "email": "a@example.fi"})
    put(root, "interviews/d.wav")
    one = select(match={"sidecar:school": "laurea"})
    assert keys(share, one) == ["interviews/b.wav"]
    assert share.count(one, candidates_only=False) == 1
    several = select(match={"sidecar:school": ("metropolia", "xamk")})
    assert keys(share, several) == ["interviews/a.wav", "interviews/c.wav"]
    person = select(subject=("sidecar:email", "a@example.fi"), columns=("sidecar:email",))
    assert keys(share, person) == ["interviews/a.wav", "interviews/c.wav"]
    assert keys(share, select(match={"path": "interviews/d.wav"})) == ["interviews/d.wav"]
    assert keys(share, select(match={"sidecar:school": "laurea"}, triggers=())) == [
        "interviews/b.wav"
    ]


def test_match_on_a_date_sidecar_field_given_as_text(root: Path, share: FileShareConnector) -> None:
    """A date from a sidecar equals its ISO text, as YAML gives match values."""
    put(root, "interviews/a.wav", {"interviewed_on": "2020-03-02"})
    put(root, "interviews/b.wav", {"interviewed_on": "2020-03-03"})
    assert keys(share, select(match={"sidecar:interviewed_on": "2020-03-02"})) == [
        "interviews/a.wav"
    ]


def test_latest_trigger_needs_every_date(root: Path, share: FileShareConnector) -> None:
    """trigger_rule latest: every trigger set and before the bound; the trigger is the max."""
    put(root, "interviews/both.wav", {"interviewed_on": "2020-01-01", "reported_on": "2020-06-01"})
    put(root, "interviews/one.wav", {"interviewed_on": "2020-01-01"})
    put(root, "interviews/late.wav", {"interviewed_on": "2020-01-01", "reported_on": "2021-06-01"})
    rule = select(
        triggers=("sidecar:interviewed_on", "sidecar:reported_on"),
        trigger_rule="latest",
        bound=date(2021, 1, 1),
    )
    found = records(share, rule)
    assert list(found) == ["interviews/both.wav"]
    assert found["interviews/both.wav"].trigger == date(2020, 6, 1)


def test_earliest_trigger_needs_any_date(root: Path, share: FileShareConnector) -> None:
    """trigger_rule earliest: any trigger before the bound; the trigger is the min present."""
    put(root, "interviews/both.wav", {"interviewed_on": "2022-01-01", "withdrawn_on": "2020-06-01"})
    put(root, "interviews/one.wav", {"interviewed_on": "2020-01-01"})
    put(root, "interviews/none.wav", {"interviewed_on": "2022-01-01"})
    put(root, "interviews/empty.wav")
    rule = select(
        triggers=("sidecar:interviewed_on", "sidecar:withdrawn_on"),
        trigger_rule="earliest",
        bound=date(2021, 1, 1),
    )
    found = records(share, rule)
    assert {k: r.trigger for k, r in found.items()} == {
        "interviews/both.wav": date(2020, 6, 1),
        "interviews/one.wav": date(2020, 1, 1),
    }


def test_delete_removes_only_due_files_with_their_sidecars(
    root: Path, share: FileShareConnector
) -> None:
    """apply(Delete) removes each still-due file and its sidecar, and nothing else."""
    put(root, "interviews/due.wav", {"interviewed_on": "2020-01-01"})
    put(root, "interviews/fresh.wav", {"interviewed_on": "2025-01-01"})
    put(root, "interviews/nodate.wav")
    rule = select(triggers=("sidecar:interviewed_on",), bound=date(2022, 1, 1))
    wanted = [("interviews/due.wav",), ("interviews/fresh.wav",), ("interviews/nodate.wav",)]
    assert share.apply(rule, wanted, Delete()) == 1
    assert not (root / "interviews/due.wav").exists()
    assert not (root / "interviews/due.wav.json").exists()
    assert (root / "interviews/fresh.wav").exists() and (
        root / "interviews/fresh.wav.json"
    ).exists()
    assert (root / "interviews/nodate.wav").exists()
    assert (root / "interviews").is_dir()  # directories are never deleted
    assert share.apply(rule, [("interviews",)], Delete()) == 0
    assert share.apply(select(table="interviews"), [("interviews",)], Delete()) == 0
    assert (root / "interviews").is_dir()


def test_apply_keeps_unless_and_changed_records(root: Path, share: FileShareConnector) -> None:
    """A record meeting an unless condition, or no longer matching, is left alone."""
    put(root, "interviews/kept.wav", {"interviewed_on": "2020-01-01", "legal_hold": "yes"})
    put(root, "interviews/moved.wav", {"interviewed_on": "2020-01-01", "school": "xamk"})
    rule = select(
        triggers=("sidecar:interviewed_on",),
        bound=date(2022, 1, 1),
        match={"sidecar:school": ("xamk", "laurea")},
        unless=(Condition("sidecar:legal_hold", "eq", "yes"),),
    )
    put(root, "interviews/moved.wav", {"interviewed_on": "2020-01-01", "school": "haaga-helia"})
    assert share.apply(rule, [("interviews/kept.wav",), ("interviews/moved.wav",)], Delete()) == 0
    assert (root / "interviews/kept.wav").exists() and (root / "interviews/moved.wav").exists()


def test_reread_after_delete(root: Path, share: FileShareConnector) -> None:
    """reread() returns the keys still present, with the requested columns."""
    put(root, "interviews/a.wav", {"interviewed_on": "2020-01-01"})
    put(root, "interviews/b.wav", {"interviewed_on": "2030-01-01"})
    rule = select(triggers=("sidecar:interviewed_on",), bound=date(2022, 1, 1))
    both = [("interviews/a.wav",), ("interviews/b.wav",)]
    before = share.reread(rule, both, ["sidecar:interviewed_on", "size"])
    assert before[("interviews/b.wav",)] == {
        "path": "interviews/b.wav",
        "sidecar:interviewed_on": date(2030, 1, 1),
        "size": len(b"RIFF....WAVE"),
    }
    assert set(before) == set(both)
    assert share.apply(rule, both, Delete()) == 1
    assert set(share.reread(rule, both, [])) == {("interviews/b.wav",)}
    assert share.reread(rule, [], []) == {}
    # A key whose folder is gone names nothing: gone. One whose folder is now a link (or
    # cannot be opened) cannot be told either way: listed as present, reported as unknown.
    assert share.reread(rule, [("gone/a.wav",)], []) == {}
    (root / "linked").symlink_to(root / "interviews", target_is_directory=True)
    assert set(share.reread(rule, [("linked/b.wav",)], [])) == {("linked/b.wav",)}
    assert [(p.key, p.effect) for p in share.problems()] == [(("linked/b.wav",), "unknown")]


@pytest.mark.parametrize(
    "key", ["../outside.wav", "interviews/../../outside.wav", "/etc/passwd", "", "a//b.wav"]
)
def test_unsafe_keys_are_refused(root: Path, share: FileShareConnector, key: str) -> None:
    """apply(), reread() and files() refuse an absolute key or one with '..' before acting,
    without repeating the path (a file name can be personal data)."""
    outside = root.parent / "outside.wav"
    outside.write_bytes(b"not yours")
    put(root, "interviews/a.wav")
    batch = [("interviews/a.wav",), (key,)]
    with pytest.raises(ShareError, match="refusing a path that leaves the share"):
        share.apply(select(), batch, Delete())
    with pytest.raises(ShareError, match="refusing a path that leaves the share"):
        share.reread(select(), batch, [])
    with pytest.raises(ShareError, match="refusing a path that leaves the share"):
        share.files(select(), batch)
    assert outside.exists() and (root / "interviews/a.wav").exists()


def test_links_are_never_records_and_never_followed(root: Path, share: FileShareConnector) -> None:
    """Every link the glob reaches, leading out of the root or inside it (a matched name, a
    sidecar, a folder the glob could enter), is a problem on its record: never read, entered
    or deleted, and never named in the problem."""
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir()
    secret = elsewhere / "secret.wav"
    secret.write_bytes(b"someone else's")
    (elsewhere / "meta.json").write_text('{"interviewed_on": "2019-01-01"}')
    (elsewhere / "dir").mkdir()
    (elsewhere / "dir" / "deep.wav").write_bytes(b"deep")
    put(root, "interviews/real.wav", {"interviewed_on": "2020-01-01"})
    put(root, "interviews/own.wav")
    (root / "interviews/link.wav").symlink_to(secret)
    (root / "interviews/own.wav.json").symlink_to(elsewhere / "meta.json")
    (root / "interviews/linked-dir").symlink_to(elsewhere / "dir")
    (root / "interviews/inside.wav").symlink_to(root / "interviews/real.wav")
    (root / "interviews/notes.txt").symlink_to(secret)  # not a name the glob matches
    everything = select()
    assert keys(share, everything) == ["interviews/real.wav"]
    found = {p.key[0]: p for p in share.problems()}
    assert sorted(found) == [
        "interviews/inside.wav",
        "interviews/link.wav",
        "interviews/linked-dir/",
        "interviews/own.wav",
    ]
    assert found["interviews/own.wav"].problem.startswith("has a sidecar that is a symbolic link")
    assert all(
        p.problem.startswith("is a symbolic link") for k, p in found.items() if "own" not in k
    )
    assert all(p.effect == "kept" and "interviews" not in p.problem for p in found.values())
    links = [("interviews/link.wav",), ("interviews/own.wav",), ("interviews/inside.wav",),
             ("interviews/linked-dir/deep.wav",)]  # fmt: skip
    assert share.apply(everything, links, Delete()) == 0
    assert secret.exists() and (elsewhere / "meta.json").exists()
    assert (elsewhere / "dir" / "deep.wav").exists() and (root / "interviews/own.wav").exists()
    assert all((root / "interviews" / name).is_symlink()
               for name in ("link.wav", "own.wav.json", "linked-dir", "inside.wav"))  # fmt: skip
    assert share.files(everything, [("interviews/link.wav",)]) == {}


def test_a_root_that_is_a_link_is_refused(tmp_path: Path) -> None:
    """The root itself is opened without following a link: name the real directory."""
    (tmp_path / "real").mkdir()
    (tmp_path / "share").symlink_to(tmp_path / "real", target_is_directory=True)
    linked = FileShareConnector(
        FilesSource(id="s", kind="files", root="x"), str(tmp_path / "share")
    )
    with pytest.raises(SourceUnavailable, match="is a symbolic link"):
        linked.ping()


def test_invalid_sidecars_count_as_missing(root: Path, share: FileShareConnector) -> None:
    """A sidecar that is not valid JSON or not an object leaves its values empty."""
    put(root, "interviews/broken.wav", "{not json")
    put(root, "interviews/list.wav", '["2020-01-01"]')
    put(root, "interviews/binary.wav")
    (root / "interviews/binary.wav.json").write_bytes(b"\xff\xfe\x00")
    put(root, "interviews/good.wav", {"interviewed_on": "2020-01-01"})
    (root / "interviews/dir.wav").mkdir()
    (root / "interviews/dir.wav.json").mkdir()
    rule = select(triggers=("sidecar:interviewed_on",), bound=date(2022, 1, 1))
    assert keys(share, rule) == ["interviews/good.wav"]
    assert share.count(select(), candidates_only=False) == 4
    assert share.describe(WAV).column("sidecar:interviewed_on") is not None


def test_files_and_parse_key(root: Path, share: FileShareConnector) -> None:
    """files() hands over existing records' files with their sidecars; parse_key is the path."""
    put(root, "interviews/a.wav", {"interviewed_on": "2020-01-01"})
    found = share.files(select(), [("interviews/a.wav",), ("interviews/missing.wav",)])
    here = root.resolve() / "interviews"
    assert found == {("interviews/a.wav",): [here / "a.wav", here / "a.wav.json"]}
    assert share.parse_key(WAV, ["path"], ["interviews/a.wav"]) == ("interviews/a.wav",)


def test_anonymise_and_other_keys_are_refused(root: Path, share: FileShareConnector) -> None:
    """A share cannot anonymise in place, and its records are keyed by path only."""
    put(root, "interviews/a.wav")
    with pytest.raises(RetentionError, match="cannot anonymise"):
        share.apply(select(), [("interviews/a.wav",)], Anonymise(constant={"size": 0}))
    with pytest.raises(ShareError, match="keyed by their path"):
        share.count(select(key=("sidecar:id",)), candidates_only=False)
    with pytest.raises(ShareError, match="no column"):
        share.count(select(match={"owner": "x"}), candidates_only=False)
    assert (root / "interviews/a.wav").exists()


def test_a_replaced_root_is_unavailable(tmp_path: Path) -> None:
    """If the root is swapped (an unmounted share) mid-run, reading stops instead of guessing."""
    root = tmp_path / "share"
    put(root, "interviews/a.wav")
    share = FileShareConnector(FilesSource(id="s", kind="files", root="share"), str(root))
    share.ping()
    root.rename(tmp_path / "old")
    root.mkdir()
    with pytest.raises(SourceUnavailable, match="changed"):
        share.reread(select(), [("interviews/a.wav",)], [])


POLICY = """\
register:
  id: amkoodari
  name: AMKoodari-hankerekisteri
  controller: Metropolia Ammattikorkeakoulu Oy
  source: "AMKoodari-hankerekisteri, tietosuojaseloste"
policies:
  - id: interview-recordings
    connector: share
    path: "interviews/**/*.wav"
    legal_basis: "GDPR 6(1)(a) ja 9(2)(a)"
"""


def write_catalog(tmp_path: Path, rule: str) -> Path:
    """A catalog with one share connector (root ``share``) and one policy ending in ``rule``."""
    catalog = tmp_path / "catalog"
    for folder in ("policies", "connectors", "jobs"):
        (catalog / folder).mkdir(parents=True)
    (catalog / "connectors/share.yaml").write_text("id: share\nkind: files\nroot: share\n")
    (catalog / "policies/001-amkoodari.yaml").write_text(POLICY + rule)
    (catalog / "retention.yaml").write_text(
        "state: sqlite:///state.db\nsigning_key: keys/signing.pem\ntimezone: Europe/Helsinki\n"
        "batch_size: 2\n"
    )
    (catalog / "share").mkdir()
    api.init(catalog, {})
    return catalog


def test_check_refuses_anonymise_and_unknown_columns_on_a_share(tmp_path: Path) -> None:
    """retention check refuses anonymisation on a share and names a column it cannot resolve."""
    catalog = write_catalog(
        tmp_path,
        "    until: 2022-06-30\n    action: anonymise\n"
        '    anonymise: {"sidecar:email": erase}\n'
        "    match: {owner: metropolia}\n",
    )
    with (
        Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws,
        pytest.raises(CatalogError) as caught,
    ):
        api.check(ws)
    messages = [(p.key, p.message) for p in caught.value.problems]
    assert messages == [
        ("match.owner", "column 'owner' does not exist in path 'interviews/**/*.wav' "
         "(it has: path, mtime, size)"),
    ]  # fmt: skip
    (catalog / "policies/001-amkoodari.yaml").write_text(
        POLICY + "    until: 2022-06-30\n    action: anonymise\n"
        '    anonymise: {"sidecar:email": erase}\n'
    )
    with (
        Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws,
        pytest.raises(CatalogError, match="cannot anonymise in place"),
    ):
        api.check(ws)


@pytest.mark.parametrize(
    ("glob", "path", "matched"),
    [
        ("interviews/**/*.wav", "interviews/a.wav", True),
        ("interviews/**/*.wav", "interviews/2020/03/a.wav", True),
        ("interviews/**/*.wav", "interviews/a.wav.json", False),
        ("interviews/**/*.wav", "other/interviews/a.wav", False),
        ("interviews/*.wav", "interviews/2020/a.wav", False),
        ("rec?.wav", "rec1.wav", True),
        ("rec[0-9].wav", "reca.wav", False),
        ("rec[!0-9].wav", "reca.wav", True),
        ("rec[!-].wav", "rec-.wav", False),
        ("**", "a/b/c", True),
    ],
)
def test_glob_patterns(glob: str, path: str, matched: bool) -> None:
    """Globs match within one name except ``**``, which spans any number of folders."""
    assert compile_glob(glob).matches(path) is matched


@pytest.mark.parametrize("glob", ["/abs/*.wav", "a/../b", "..", "", "[z-a].wav"])
def test_unusable_globs_are_lookup_errors(glob: str) -> None:
    """An absolute, escaping or malformed glob is not a table of the share."""
    with pytest.raises(LookupError):
        compile_glob(glob)


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("interviews/**/*.wav", "interviews/*.wav", True),
        ("interviews/*.wav", "recordings/*.wav", False),
        ("interviews/*.wav", "interviews/2020/*.wav", False),
        ("*/a.wav", "interviews/a.wav", True),
        ("i*/a.wav", "recordings/a.wav", False),
        ("**", "anything/at/all", True),
        ("a", "a/**", False),
    ],
)
def test_globs_may_overlap(first: str, second: str, overlap: bool) -> None:
    """Two globs are kept apart only when no file can match both."""
    assert globs_may_overlap(first, second) is overlap
    assert globs_may_overlap(second, first) is overlap


@pytest.mark.parametrize(
    ("rule", "deleted"),
    [
        (
            '    trigger: "sidecar:interviewed_on"\n    retain: P2Y\n    action: delete\n',
            ["interviews/2020/rec1.wav"],
        ),
        (
            "    until: 2022-06-30\n    action: delete\n",
            ["interviews/2020/rec1.wav", "interviews/2026/rec2.wav", "interviews/rec3.wav"],
        ),
    ],
    ids=["sidecar-trigger", "until"],
)
def test_end_to_end_through_the_api(tmp_path: Path, rule: str, deleted: list[str]) -> None:
    """check, plan and run on a catalog with a share delete exactly the due recordings."""
    catalog = write_catalog(tmp_path, rule)
    share = catalog / "share"
    put(share, "interviews/2020/rec1.wav", {"interviewed_on": "2020-03-02"})
    put(share, "interviews/2026/rec2.wav", {"interviewed_on": "2026-01-10"})
    put(share, "interviews/rec3.wav")
    put(share, "interviews/notes.txt")
    put(share, "other/rec4.wav", {"interviewed_on": "2001-01-01"})
    all_wav = ["interviews/2020/rec1.wav", "interviews/2026/rec2.wav", "interviews/rec3.wav"]
    with Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws:
        api.check(ws)
        plan, _ = api.plan(ws, as_of=date(2026, 11, 22))
        counts = plan.policies[0].counts
        assert (counts.scanned, counts.expire) == (3, len(deleted))
        assert all((share / rel).exists() for rel in all_wav)  # a plan changes nothing
        outcome = api.run(ws, as_of=date(2026, 11, 22))
        assert outcome.exit_code == 0, [p.message for p in outcome.policies]
        assert outcome.disposed == len(deleted)
        for rel in all_wav:
            assert (share / rel).exists() == (rel not in deleted)
            assert Path(f"{share / rel}.json").exists() == (
                rel not in deleted and rel != "interviews/rec3.wav"
            )
        assert (share / "interviews/notes.txt").exists() and (share / "other/rec4.wav").exists()
        certificates = list(ws.ledger.iter_certificates())
        assert len(certificates) == len(deleted)
        assert all(c["action"] == "deleted" and c["verified"] for c in certificates)
        assert api.verify_ledger(ws).ok
        again = api.run(ws, as_of=date(2026, 11, 22))
        assert again.disposed == 0 and len(list(ws.ledger.iter_certificates())) == len(deleted)


def test_traversal_in_the_catalog_or_a_sidecar_link_fails_check_with_exit_2(
    tmp_path: Path,
) -> None:
    """A `..` path glob, or a sidecar linking out of the share, is refused with exit 2."""
    import subprocess
    import sys

    catalog = write_catalog(tmp_path, "    until: 2022-06-30\n    action: delete\n")
    outside = tmp_path / "outside.json"
    outside.write_text('{"interviewed_on": "2020-01-01"}')
    (catalog / "share" / "interviews").mkdir()
    (catalog / "share" / "interviews" / "a.wav").write_bytes(b"RIFF")
    (catalog / "share" / "interviews" / "a.wav.json").symlink_to(outside)
    env = {"PATH": os.environ.get("PATH", ""), "RETENTION_SECRET": SECRET}

    def check() -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "retention", "check", "--catalog", str(catalog)]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)

    linked = check()
    ref = Secret(SECRET.encode()).record_ref("share", "interviews/**/*.wav", ("interviews/a.wav",))
    assert linked.returncode == 2
    assert f"record {ref} has a sidecar that is a symbolic link" in linked.stderr
    assert "a.wav" not in linked.stderr  # named by its reference only
    assert outside.exists()

    (catalog / "share" / "interviews" / "a.wav.json").unlink()
    policy_file = catalog / "policies/001-amkoodari.yaml"
    policy_file.write_text(
        policy_file.read_text().replace("interviews/**/*.wav", "../outside/*.wav")
    )
    climbing = check()
    assert climbing.returncode == 2
    assert "policies/001-amkoodari.yaml" in climbing.stderr and "'path'" in climbing.stderr
    assert "no '..'" in climbing.stderr


def test_a_share_needs_a_path_and_a_database_a_table(tmp_path: Path) -> None:
    """`table:` on a file share, or `path:` on a database, is a catalog error naming the key."""
    catalog = write_catalog(tmp_path, "    until: 2022-06-30\n    action: delete\n")
    policy_file = catalog / "policies/001-amkoodari.yaml"
    policy_file.write_text(
        policy_file.read_text()
        .replace('path: "interviews/**/*.wav"', "table: interviews")
        .replace("connector: share", "connector: share\n    key: path")
    )
    with pytest.raises(CatalogError) as caught:
        Workspace.open(catalog, {})
    assert [(p.policy, p.key) for p in caught.value.problems] == [("interview-recordings", "table")]


def test_erasure_finds_a_persons_files_whatever_their_trigger(tmp_path: Path) -> None:
    """An erasure request on a share selects the subject's files even when none is due yet."""
    catalog = write_catalog(
        tmp_path,
        '    subject: "sidecar:email"\n    trigger: "sidecar:interviewed_on"\n'
        "    retain: P10Y\n    action: delete\n",
    )
    share = catalog / "share"
    put(share, "interviews/a.wav", {"interviewed_on": "2026-01-01", "email": "a@example.com"})
    put(share, "interviews/b.wav", {"interviewed_on": "2026-01-01", "email": "b@example.com"})
    with Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws:
        outcome = api.erase(ws, "a@example.com", as_of=date(2026, 11, 22))
    assert outcome.run is not None and outcome.run.disposed == 1
    assert (
        not (share / "interviews/a.wav").exists() and not (share / "interviews/a.wav.json").exists()
    )
    assert (share / "interviews/b.wav").exists()
