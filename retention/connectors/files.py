"""``kind: files`` — a directory tree (a network share), one record per file.

A policy's ``path:`` is a glob relative to the share's root (``interviews/**/*.wav``); each
file it matches is one record, keyed by its relative POSIX path: ``("interviews/a.wav",)``.
``*``, ``?`` and ``[...]`` (``[!...]`` negates) match within one name, hidden names included;
a ``**`` segment matches any number of folders, none included.

Columns
    ``path`` (string, the key), ``mtime`` (datetime: the file's modification time in UTC as
    a *naive* datetime, so its day is the UTC day) and ``size`` (integer, bytes). Two
    families of computed columns are resolved through :attr:`TableInfo.dynamic`:

    ``sidecar:<field>``
        ``<field>`` of the JSON object in ``<file>.json`` beside the file
        (``rec1.wav.json``). A ``YYYY-MM-DD`` string is a ``date``, an ISO date-time string
        a ``datetime`` (naive UTC), other JSON values keep their type. :meth:`describe`
        infers the column's kind from the values present in the share; a field no sidecar
        has yet resolves as a nullable ``date`` column (its values are all empty, so nothing
        is due through it), so that a new or empty share does not fail ``retention check``.
    ``path:<regex>``
        the named group ``date`` of ``<regex>`` searched in the relative path, as a date
        (``YYYY-MM-DD`` or ``YYYYMMDD``; anything else is empty). A regex that does not
        compile or has no ``date`` group is not a column.

    Any of these can be a trigger (``trigger: mtime``, ``sidecar:interviewed_on``, ``path:…``),
    filtered by ``match:``/``subject:`` or tested by ``unless:``. Several triggers combine by
    ``trigger_rule`` exactly as in the SQL backend. An empty value never equals anything.

Sidecars are never records: a ``NAME.json`` next to a file ``NAME`` is skipped even where the
glob matches it, and is deleted together with its file. A sidecar that is missing, is not
valid JSON, is not a JSON object, is larger than 1 MiB or cannot be read leaves every
``sidecar:`` value of its file empty.

Confinement: nothing outside the root is read, listed or deleted.

* The walk never descends into a symbolic link to a directory. A file that is a link is a
  record only if it resolves inside the root; deleting it removes the link, never its target.
  Links resolving outside the root (files, sidecars, directories the glob could enter) are
  skipped and listed by :meth:`FileShareConnector.escapes`, for ``retention check``.
* Keys handed to :meth:`apply`, :meth:`reread` and :meth:`files` must be canonical relative
  paths: an absolute key, or one with ``..``, ``.`` or empty parts, is refused
  (:class:`ShareError`) before anything is touched.
* Deletion opens each directory from the root down with ``O_NOFOLLOW`` and unlinks relative
  to that directory, so a directory swapped for a link between the re-check and the unlink
  cannot redirect it. Directories are never deleted.
* :meth:`reread` calls a record gone only when its directory is still there and the name is
  not in it; anything it cannot confirm counts as present, so no certificate claims a
  deletion it did not see. The root's device and inode are remembered on first use; a root
  that changes under a run (an unmounted share) is :class:`SourceUnavailable`.

A share is not transactional: :meth:`apply` re-checks and deletes file by file. The file goes
first, then its sidecar, so an interruption can leave a sidecar behind but never a recording
without a certificate. In-place anonymisation is not possible (``anonymise=False``).
Names that are not valid UTF-8 are skipped (they cannot be a key in reports or the ledger).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from retention.connectors.base import (
    Capabilities,
    Change,
    Column,
    ColumnKind,
    Delete,
    Key,
    Record,
    Selection,
    TableInfo,
    combine_triggers,
)
from retention.errors import RetentionError, SourceUnavailable
from retention.globs import Glob, compile_glob
from retention.model import FilesSource

SIDECAR_SUFFIX = ".json"
MAX_SIDECAR_BYTES = 1 << 20
SIDECAR_PREFIX = "sidecar:"
PATH_PREFIX = "path:"

FIXED_COLUMNS: Mapping[str, Column] = {
    "path": Column("path", "string", nullable=False, sql_type="path relative to the root"),
    "mtime": Column("mtime", "datetime", nullable=False, sql_type="modification time (UTC)"),
    "size": Column("size", "integer", nullable=False, sql_type="size in bytes"),
}
KEY = ("path",)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*")
_PATH_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class ShareError(RetentionError):
    """A request a file share cannot honour: an unsafe key, anonymisation, an unknown column."""


# -- values ------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _path_regex(name: str) -> re.Pattern[str] | None:
    """The regex of a ``path:<regex>`` column; None when it is not a usable one."""
    if not name.startswith(PATH_PREFIX):
        return None
    try:
        compiled = re.compile(name[len(PATH_PREFIX) :])
    except re.error:
        return None
    return compiled if "date" in compiled.groupindex else None


def _sidecar_field(name: str) -> str | None:
    if name.startswith(SIDECAR_PREFIX) and len(name) > len(SIDECAR_PREFIX):
        return name[len(SIDECAR_PREFIX) :]
    return None


def _json_value(value: Any) -> Any:
    """A sidecar value: ISO dates and date-times become date/datetime, the rest stays."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
        if _ISO_DATETIME.fullmatch(text):
            return _naive_utc(datetime.fromisoformat(text))
    except ValueError:
        return value
    return value


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _path_date(text: str | None) -> date | None:
    if text is None:
        return None
    found = _PATH_DATE.fullmatch(text.strip())
    if found is None:
        return None
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def _kind(value: Any) -> ColumnKind:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, str):
        return "string"
    return "other"


def _merged_kind(kinds: set[ColumnKind]) -> ColumnKind:
    if not kinds:
        return "date"
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds == {"date", "datetime"}:
        return "datetime"
    if kinds == {"integer", "number"}:
        return "number"
    return "other"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _equal(value: Any, wanted: Any) -> bool:
    """``match:``/``subject`` equality; YAML and the command line give dates and numbers as
    text, so a typed value also equals its text form. Empty never equals anything."""
    if value is None:
        return False
    if value == wanted:
        return True
    if isinstance(wanted, str) and not isinstance(value, str):
        if isinstance(value, date):
            return bool(_json_value(wanted) == value)
        return _text(value) == wanted.strip()
    return False


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, tuple | list | set | frozenset):
        return any(_equal(value, w) for w in wanted)
    return _equal(value, wanted)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- one file ----------------------------------------------------------------------------


class _File:
    """One record's file, its values read lazily and at most once."""

    __slots__ = ("_share", "_sidecar", "_stat", "_statted", "rel")

    def __init__(self, share: FileShareConnector, rel: str) -> None:
        self._share, self.rel = share, rel
        self._stat: os.stat_result | None = None
        self._statted = False
        self._sidecar: Mapping[str, Any] | None = None

    @property
    def path(self) -> Path:
        return self._share.root / self.rel

    def stat(self) -> os.stat_result | None:
        """The file's status when it is a regular file confined to the root, else None."""
        if not self._statted:
            self._statted = True
            real = self._share.confined(self.path)
            parts = self.rel.split("/")
            if real is not None and self._share.plain_parent(parts):
                try:
                    found = real.stat()
                except OSError:
                    found = None
                if found is not None and stat.S_ISREG(found.st_mode):
                    self._stat = found
        return self._stat

    def is_sidecar(self) -> bool:
        """A ``NAME.json`` beside a file ``NAME`` belongs to it and is never a record."""
        if not self.rel.endswith(SIDECAR_SUFFIX):
            return False
        base = self._share.root / self.rel[: -len(SIDECAR_SUFFIX)]
        try:
            return not stat.S_ISDIR(base.lstat().st_mode)
        except OSError:
            return False

    def is_record(self) -> bool:
        return self.stat() is not None and not self.is_sidecar()

    def sidecar_path(self) -> Path | None:
        """The sidecar file, when there is a regular one confined to the root."""
        path = self._share.root / (self.rel + SIDECAR_SUFFIX)
        real = self._share.confined(path)
        return path if real is not None and real.is_file() else None

    def sidecar(self) -> Mapping[str, Any]:
        """The sidecar's object; empty when missing, outside the root, unreadable or invalid."""
        if self._sidecar is None:
            self._sidecar = self._read_sidecar()
        return self._sidecar

    def _read_sidecar(self) -> Mapping[str, Any]:
        real = self._share.confined(self._share.root / (self.rel + SIDECAR_SUFFIX))
        if real is None:
            return {}
        try:
            fd = os.open(real, os.O_RDONLY | _NOFOLLOW)
        except OSError:
            return {}
        try:
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    return {}
                raw = handle.read(MAX_SIDECAR_BYTES + 1)
            if len(raw) > MAX_SIDECAR_BYTES:
                return {}
            doc = json.loads(raw.decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def value(self, name: str) -> Any:
        if name == "path":
            return self.rel
        if name == "mtime":
            found = self.stat()
            return (
                None if found is None else _naive_utc(datetime.fromtimestamp(found.st_mtime, UTC))
            )
        if name == "size":
            found = self.stat()
            return None if found is None else found.st_size
        field_name = _sidecar_field(name)
        if field_name is not None:
            return _json_value(self.sidecar().get(field_name))
        regex = _path_regex(name)
        if regex is not None:
            found_date = regex.search(self.rel)
            return None if found_date is None else _path_date(found_date.group("date"))
        raise ShareError(
            f"connector {self._share.id}: no column {name!r} on a file share (columns: path, "
            "mtime, size, sidecar:<field>, path:<regex with a (?P<date>...) group>)"
        )

    def trigger_date(self, name: str) -> date | None:
        return _as_date(self.value(name))


# -- the connector -----------------------------------------------------------------------


class FileShareConnector:
    """A directory tree; one record per file matched by a policy's ``path:`` glob."""

    def __init__(self, spec: FilesSource, url: str) -> None:
        self.id = spec.id
        self.root = Path(url).resolve()
        self.capabilities = Capabilities(
            transactional=False,
            reread=True,
            max_bind_params=10_000,
            anonymise=False,
            versions=("mtime",),
        )
        self._root_id: tuple[int, int] | None = None

    # -- the root and confinement ---------------------------------------------------------

    def _check_root(self) -> None:
        """The root is a readable directory, the same one as on first use."""
        try:
            found = self.root.stat()
        except OSError as exc:
            raise SourceUnavailable(
                f"connector {self.id}: the share root {self.root} is not reachable: "
                f"{exc.strerror or type(exc).__name__}"
            ) from exc
        if not stat.S_ISDIR(found.st_mode):
            raise SourceUnavailable(f"connector {self.id}: {self.root} is not a directory")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise SourceUnavailable(f"connector {self.id}: {self.root} is not readable")
        ident = (found.st_dev, found.st_ino)
        if self._root_id is None:
            self._root_id = ident
        elif ident != self._root_id:
            raise SourceUnavailable(
                f"connector {self.id}: the share root {self.root} changed since it was first "
                "read (unmounted or remounted?)"
            )

    def confined(self, path: Path) -> Path | None:
        """``path`` with every link resolved, when that stays inside the root; else None."""
        try:
            real = path.resolve()
        except (OSError, RuntimeError):  # a link loop
            return None
        return real if real.is_relative_to(self.root) else None

    def plain_parent(self, parts: Sequence[str]) -> bool:
        """The directories of ``parts`` (all but the last) are real directories, not links."""
        parent = self.root.joinpath(*parts[:-1])
        try:
            return parent.resolve() == parent
        except (OSError, RuntimeError):
            return False

    def _safe_key(self, key: Key) -> str:
        """A key's relative path, refused unless it is a canonical path inside the root."""
        text = key[0] if len(key) == 1 else None
        if not isinstance(text, str):
            raise ShareError(f"connector {self.id}: a key is one relative path")
        parts = text.split("/")
        if (
            text.startswith(("/", "\\"))
            or "\x00" in text
            or any(part in ("", ".", "..") for part in parts)
        ):
            # The path itself is not repeated: a file name can be personal data.
            raise ShareError(
                f"connector {self.id}: refusing a path that leaves the share (absolute, or "
                "with '..'); a record must be a relative path inside the share"
            )
        return text

    def _check_key(self, selection: Selection) -> None:
        if tuple(selection.key) != KEY:
            raise ShareError(
                f"connector {self.id}: records on a file share are keyed by their path; "
                f"use key: path (got {list(selection.key)})"
            )

    # -- description ----------------------------------------------------------------------

    def ping(self) -> None:
        self._check_root()
        try:
            with os.scandir(self.root) as entries:
                next(entries, None)
        except OSError as exc:
            raise SourceUnavailable(
                f"connector {self.id}: cannot list {self.root}: {exc.strerror}"
            ) from exc

    def describe(self, table: str) -> TableInfo:
        glob = compile_glob(table)
        self._check_root()
        kinds: dict[str, set[ColumnKind]] | None = None

        def dynamic(name: str) -> Column | None:
            nonlocal kinds
            field_name = _sidecar_field(name)
            if field_name is not None:
                if kinds is None:
                    kinds = self._sidecar_kinds(glob)
                seen = kinds.get(field_name, set())
                what = "sidecar field" if seen else "sidecar field, in no sidecar yet"
                return Column(name, _merged_kind(seen), nullable=True, sql_type=what)
            if _path_regex(name) is not None:
                return Column(name, "date", nullable=True, sql_type="date in the path")
            return None

        return TableInfo(name=table, columns=FIXED_COLUMNS, primary_key=KEY, dynamic=dynamic)

    def _sidecar_kinds(self, glob: Glob) -> dict[str, set[ColumnKind]]:
        kinds: dict[str, set[ColumnKind]] = {}
        for rel in self._scan(glob)[0]:
            for name, raw in _File(self, rel).sidecar().items():
                value = _json_value(raw)
                if value is not None:
                    kinds.setdefault(name, set()).add(_kind(value))
        return kinds

    def duplicate_keys(self, table: str, key: Sequence[str]) -> int:
        return 0

    def escapes(self, glob: str) -> list[str]:
        """Relative paths of links the glob reaches that resolve outside the root.

        Matched files and the sidecars of matched files are listed by name, directories the
        glob could enter with a trailing ``/``. None of them is read, listed or deleted.
        """
        return self._scan(compile_glob(glob))[1]

    # -- walking --------------------------------------------------------------------------

    def _scan(self, glob: Glob) -> tuple[list[str], list[str]]:
        """The sorted relative paths of the files ``glob`` matches, and of escaping links."""
        self._check_root()
        records: list[str] = []
        escapes: list[str] = []
        stack: list[tuple[Path, tuple[str, ...]]] = [(self.root, ())]
        while stack:
            directory, parts = stack.pop()
            try:
                with os.scandir(directory) as listing:
                    entries = {e.name: e for e in listing if _utf8(e.name)}
            except OSError as exc:
                where = "/".join(parts) or "the root"
                raise SourceUnavailable(
                    f"connector {self.id}: cannot list {where}: {exc.strerror}"
                ) from exc
            for name, entry in entries.items():
                rel_parts = (*parts, name)
                rel = "/".join(rel_parts)
                kind = self._classify(glob, directory, rel_parts, entry, entries)
                if kind == "descend":
                    stack.append((directory / name, rel_parts))
                elif kind == "escape":
                    escapes.append(rel)
                elif kind == "escape-dir":
                    escapes.append(rel + "/")
                elif kind == "record":
                    records.append(rel)
                    sidecar = entries.get(name + SIDECAR_SUFFIX)
                    escaping = sidecar is not None and sidecar.is_symlink()
                    if escaping and self.confined(directory / (name + SIDECAR_SUFFIX)) is None:
                        escapes.append(rel + SIDECAR_SUFFIX)
        records.sort()
        escapes.sort()
        return records, escapes

    def _classify(
        self,
        glob: Glob,
        directory: Path,
        rel_parts: tuple[str, ...],
        entry: os.DirEntry[str],
        entries: Mapping[str, os.DirEntry[str]],
    ) -> str:
        """What one directory entry is to the walk: record, descend, escape(-dir) or skip."""
        rel = "/".join(rel_parts)
        matched = glob.matches(rel) and not _sidecar_in(entry.name, entries)
        if entry.is_symlink():
            if self.confined(directory / entry.name) is None:
                if matched:
                    return "escape"
                if glob.could_contain(rel_parts) and entry.is_dir():
                    return "escape-dir"
                return "skip"
            # A link inside the root is a record when it names a file; a link to a
            # directory is never entered.
            return "record" if matched and entry.is_file() else "skip"
        if entry.is_dir(follow_symlinks=False):
            return "descend" if glob.could_contain(rel_parts) else "skip"
        if entry.is_file(follow_symlinks=False) and matched:
            return "record"
        return "skip"

    def _files(self, selection: Selection, *, candidates_only: bool) -> Iterator[_File]:
        self._check_key(selection)
        records, _ = self._scan(compile_glob(selection.table))
        for rel in records:
            found = _File(self, rel)
            if found.stat() is not None and self._selected(
                found, selection, candidates_only=candidates_only
            ):
                yield found

    def _selected(self, found: _File, selection: Selection, *, candidates_only: bool) -> bool:
        for name, wanted in selection.match.items():
            if not _matches(found.value(name), wanted):
                return False
        if selection.subject is not None:
            column, value = selection.subject
            if not _equal(found.value(column), value):
                return False
        if candidates_only and selection.triggers and selection.bound is not None:
            bound = selection.bound
            dates = [found.trigger_date(name) for name in selection.triggers]
            due = [d is not None and d < bound for d in dates]
            return all(due) if selection.trigger_rule == "latest" else any(due)
        return True

    # -- reading --------------------------------------------------------------------------

    def count(self, selection: Selection, *, candidates_only: bool) -> int:
        return sum(1 for _ in self._files(selection, candidates_only=candidates_only))

    def candidates(self, selection: Selection, batch_size: int) -> Iterator[list[Record]]:
        size = max(1, batch_size)
        page: list[Record] = []
        for found in self._files(selection, candidates_only=True):
            dates = [found.trigger_date(name) for name in selection.triggers]
            page.append(
                Record(
                    key=(found.rel,),
                    trigger=combine_triggers(dates, selection.trigger_rule),
                    values={name: found.value(name) for name in selection.columns},
                )
            )
            if len(page) >= size:
                yield page
                page = []
        if page:
            yield page

    def reread(
        self,
        selection: Selection,
        keys: Sequence[Key],
        columns: Sequence[str],
        *,
        selected_only: bool = False,
    ) -> dict[Key, Mapping[str, Any]]:
        self._check_key(selection)
        rels = [self._safe_key(key) for key in keys]
        if not rels:
            return {}
        self._check_root()
        out: dict[Key, Mapping[str, Any]] = {}
        for rel in rels:
            if self._gone(rel):
                continue
            found = _File(self, rel)
            if selected_only and not self._selected(found, selection, candidates_only=True):
                continue
            values = {name: found.value(name) for name in columns if name != "path"}
            out[(rel,)] = {"path": rel, **values}
        return out

    def unless_met(self, selection: Selection, keys: Sequence[Key]) -> dict[Key, tuple[bool, ...]]:
        """A share compares in Python: :meth:`Condition.holds` is its rule, as in :meth:`apply`."""
        found = self.reread(selection, keys, [c.column for c in selection.unless])
        return {
            key: tuple(c.holds(values.get(c.column)) for c in selection.unless)
            for key, values in found.items()
        }

    def equal(self, table: str, column: str, first: Any, second: Any) -> bool:
        """A value of a file equals both when one match value equals the other as ``match:``
        compares (a typed value also equals its text form)."""
        return _matches(first, second) or _matches(second, first)

    def _gone(self, rel: str) -> bool:
        """True only when the file's directory is there and holds no entry of that name."""
        parts = rel.split("/")
        try:
            fd = self._open_dir(parts[:-1])
        except OSError:
            return False  # the directory is gone or is a link: cannot confirm a deletion
        try:
            os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        finally:
            os.close(fd)
        return False

    def files(self, selection: Selection, keys: Sequence[Key]) -> dict[Key, list[Path]]:
        """Each existing record's file, and its sidecar when it has one inside the share."""
        self._check_key(selection)
        rels = [self._safe_key(key) for key in keys]
        if rels:
            self._check_root()
        out: dict[Key, list[Path]] = {}
        for rel in rels:
            found = _File(self, rel)
            if found.is_record():
                sidecar = found.sidecar_path()
                out[(rel,)] = [found.path] + ([sidecar] if sidecar is not None else [])
        return out

    def parse_key(self, table: str, columns: Sequence[str], text: Sequence[str]) -> Key:
        return (text[0],)

    # -- writing --------------------------------------------------------------------------

    def apply(self, selection: Selection, keys: Sequence[Key], change: Change) -> int:
        if not isinstance(change, Delete):
            raise ShareError(
                f"connector {self.id}: a file share cannot anonymise files in place; "
                "use action: delete (or archive)"
            )
        self._check_key(selection)
        rels = [self._safe_key(key) for key in keys]  # refuse before deleting anything
        if not rels:
            return 0
        glob = compile_glob(selection.table)
        self._check_root()
        deleted = 0
        for rel in rels:
            if not glob.matches(rel):
                continue
            found = _File(self, rel)
            if not found.is_record():
                continue
            if not self._selected(found, selection, candidates_only=True):
                continue
            if any(c.holds(found.value(c.column)) for c in selection.unless):
                continue
            if self._delete(rel):
                deleted += 1
        return deleted

    def _open_dir(self, parts: Sequence[str]) -> int:
        """A descriptor of the directory ``parts`` below the root, following no link."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                inner = os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = inner
        except OSError:
            os.close(fd)
            raise
        return fd

    def _delete(self, rel: str) -> bool:
        """Unlink the file, then its sidecar, relative to their directory; never a directory."""
        parts = rel.split("/")
        name = parts[-1]
        try:
            fd = self._open_dir(parts[:-1])
        except OSError:
            return False
        try:
            try:
                if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    return False
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise SourceUnavailable(
                    f"connector {self.id}: deleting {rel} failed: {exc.strerror}"
                ) from exc
            self._delete_sidecar(fd, rel)
            return True
        finally:
            os.close(fd)

    def _delete_sidecar(self, fd: int, rel: str) -> None:
        name = rel.split("/")[-1] + SIDECAR_SUFFIX
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except OSError:
            return
        if stat.S_ISLNK(mode) and self.confined(self.root / (rel + SIDECAR_SUFFIX)) is None:
            return  # a link leaving the root is left alone; escapes() reports it
        if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise SourceUnavailable(
                    f"connector {self.id}: deleting the sidecar of {rel} failed: {exc.strerror}"
                ) from exc

    def close(self) -> None:
        return None


def _sidecar_in(name: str, entries: Mapping[str, os.DirEntry[str]]) -> bool:
    """``name`` is ``BASE.json`` and ``BASE`` is a file (or link) in the same directory."""
    if not name.endswith(SIDECAR_SUFFIX):
        return False
    base = entries.get(name[: -len(SIDECAR_SUFFIX)])
    return base is not None and not base.is_dir(follow_symlinks=False)
