"""Hostile catalog YAML fails fast with a problem naming the file: alias bombs, deep nesting,
recursive aliases and oversized files are refused before they cost time or memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from retention.catalog import yamlfile
from retention.catalog.yamlfile import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES, YamlProblem
from retention.errors import EXIT_INVALID
from tests.test_catalog import make_catalog, only_problem, write

#: The issue's 256-byte "billion laughs" at eight levels: 9**8 strings once expanded.
LEVELS = zip("abcdefg", "bcdefgh", strict=True)
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in LEVELS
)
DEEP = "[" * 20_000


def problem(tmp_path: Path, text: str | bytes) -> YamlProblem:
    path = tmp_path / "policies" / "x.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlProblem) as caught:
        yamlfile.load(path, "policies/x.yaml", {})
    assert caught.value.problem.file == "policies/x.yaml"
    return caught.value


def test_the_alias_bomb_is_refused_at_the_alias_that_overflows(tmp_path: Path) -> None:
    """The 256-byte bomb at eight levels is refused (line of the alias), not expanded."""
    assert len(BOMB.encode()) <= 512 and BOMB.count("\n") == 8
    found = problem(tmp_path, BOMB).problem
    assert f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes" in found.message
    assert found.line is not None and 3 <= found.line <= 8


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    """An alias inside the node it names would make an endless structure: refused."""
    found = problem(tmp_path, "a: &x\n  - 1\n  - *x\n").problem
    assert "refers to a node that contains it" in found.message and found.line == 3


def test_nesting_beyond_the_bound_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    """20,000 opening brackets: a problem at line 1, not RecursionError."""
    found = problem(tmp_path, DEEP).problem
    assert f"nested deeper than {MAX_DEPTH} levels" in found.message and found.line == 1


def test_a_file_beyond_the_size_bound_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of more than 1 MiB is refused from its size; its content is never read."""
    text = "# padding\n" * (MAX_FILE_BYTES // 10 + 1)
    path = tmp_path / "policies" / "x.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")

    def no_reading(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("the oversized file was read")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    monkeypatch.setattr(Path, "read_text", no_reading)
    with pytest.raises(YamlProblem) as caught:
        yamlfile.load(path, "policies/x.yaml", {})
    assert "larger than 1 MiB" in caught.value.problem.message


def test_a_file_at_the_bound_and_a_few_aliases_still_load(tmp_path: Path) -> None:
    """The bounds leave room for real catalogs: merge keys, nesting, a file just under 1 MiB."""
    text = "base: &b {action: delete, retain: P1Y}\n" + "".join(
        f"p{n}: {{<<: *b, id: p{n}}}\n" for n in range(200)
    )
    text += "deep: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2) + "\n"
    text += "#" * (MAX_FILE_BYTES - len(text.encode()) - 1) + "\n"
    path = tmp_path / "ok.yaml"
    path.write_text(text, encoding="utf-8")
    doc = yamlfile.load(path, "ok.yaml", {})
    assert doc["p199"] == {"action": "delete", "retain": "P1Y", "id": "p199"}


def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    """A catalog 'file' that is a FIFO (or a device) would block or never end: refused."""
    fifo = tmp_path / "pipe.yaml"
    try:
        import os

        os.mkfifo(fifo)
    except (AttributeError, OSError):
        pytest.skip("no named pipes here")
    with pytest.raises(YamlProblem) as caught:
        yamlfile.load(fifo, "policies/pipe.yaml", {})
    assert "not a regular file" in caught.value.problem.message


def test_the_catalog_names_the_file_and_check_exits_2(tmp_path: Path) -> None:
    """Through the catalog and the command line: exit 2, the file named, in seconds."""
    root = make_catalog(tmp_path / "cat", {"policies/bomb.yaml": BOMB})
    found = only_problem(root)
    assert found.file == "policies/bomb.yaml" and "aliases expand" in found.message
    write(root, "policies/bomb.yaml", DEEP)
    proc = subprocess.run(
        [sys.executable, "-m", "retention", "check", "--catalog", str(root)],
        capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == EXIT_INVALID, proc.stderr
    assert "policies/bomb.yaml:1: invalid YAML: nested deeper than" in proc.stderr
    assert "RecursionError" not in proc.stderr
