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

Confinement: nothing outside the root is read, listed or deleted, whatever is swapped.

* The root is opened once per connector, with ``O_NOFOLLOW``, and checked to be the
  directory the path names; every listing, status, open and unlink then goes through
  descriptors opened beneath it, one name at a time, each with ``O_NOFOLLOW``. A root or a
  folder swapped for a link mid-run can therefore never redirect a deletion. A root path that
  no longer names the opened directory (an unmounted share) is :class:`SourceUnavailable`.
* No symbolic link is ever followed, read, entered or deleted. Keys handed to :meth:`apply`,
  :meth:`reread` and :meth:`files` must be canonical relative paths: an absolute key, or one
  with ``..``, ``.`` or empty parts, is refused (:class:`ShareError`) before anything is
  touched. Directories are never deleted.

Record problems (:meth:`FileShareConnector.problems`, the engine shows them by record
reference, a connector never names the file): what a glob reaches but the share will not
dispose of is reported, never silently skipped: a symbolic link (a matched name, a sidecar,
or a folder the glob could enter), a file that is not regular (a pipe, a device), a file or
sidecar with more than one hard link (deleting one name would not destroy the content), and a
name that is not valid UTF-8 (it cannot be a key). At deletion the file is opened and checked
again: a hard link made since, a name swapped for another file, or an unlink refused
(permission denied) is a problem on that record only, and the rest of the batch goes on.

Only the file decided on is ever unlinked. :meth:`candidates` remembers each listed file's
device, inode, modification time (ns) and size until its batch is applied; :meth:`apply`
opens the file beneath its folder without following a link and refuses (a ``kept`` problem)
any other file or version found at the path: a new version saved over it, a folder renamed
in its place. After the unlink the open file must have no name left; otherwise something else
went at that name, and the record is a problem, never certified.

:meth:`reread` calls a record gone when the last :meth:`apply` saw its decided file with no
name left, whatever is at its path now (a newcomer there is a new record, listed and decided
by a later run); else only when the path provably names nothing: its folder is there without
that name, or a folder on its path is no longer there. When it cannot tell (a folder on the
path is now a link, or cannot be opened) it lists the record as present and reports it as
``unknown``, so the engine keeps its intent for a later run. A later run's reconcile (after a
crash between the unlink and the re-read) has no such proof and judges by path alone: a file
that appeared at the path since is taken as the record still there, and its intent is dropped
without a certificate; a certificate is never made on a guess.

A share is not transactional: :meth:`apply` re-checks and deletes file by file. The file goes
first, then its sidecar, so an interruption can leave a sidecar behind but never a recording
without a certificate. In-place anonymisation is not possible (``anonymise=False``).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from retention.catalog.globs import Glob, compile_glob
from retention.catalog.model import FilesSource
from retention.connectors.base import (
    BatchSize,
    Capabilities,
    Change,
    Column,
    ColumnKind,
    Delete,
    Key,
    ProblemEffect,
    Record,
    RecordProblem,
    Selection,
    TableInfo,
    combine_triggers,
    page_size,
)
from retention.errors import RetentionError, SourceUnavailable

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
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _NOFOLLOW
"""A pipe opened with these returns at once instead of waiting for a writer."""
_HANDLE_FLAGS = getattr(os, "O_PATH", os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)) | _NOFOLLOW
"""A handle on a file itself, to check it and see it gone after the unlink; ``O_PATH`` needs
no read permission."""

LINK = (
    "is a symbolic link; links are never followed, read or deleted: replace it with the "
    "file or folder it names, or remove it"
)
NOT_REGULAR = "is not a regular file (a pipe, socket or device): it is never read or deleted"
NOT_UTF8 = (
    "has a name that is not valid UTF-8, so it cannot be named in a plan or a certificate "
    "and is never read or deleted: rename it"
)
NOT_UTF8_FOLDER = (
    "is a folder whose name is not valid UTF-8: its files cannot be named, so none of them "
    "is read or deleted: rename it"
)
REPLACED = (
    "was replaced or changed at its path since it was listed (a new version saved over it, "
    "or a folder renamed): the file there now is not the one decided on, so it is neither "
    "deleted nor certified; a later run decides on it again"
)
WRONG_UNLINK = (
    "was unlinked, but the file decided on still has a name: a hard link was made, or the "
    "file was moved and another file at its name was deleted in its place, at that instant; "
    "not certified: find the file's other name, and check the folder for a file missing"
)
UNKNOWN = (
    "cannot be confirmed gone: {why}; no certificate yet, and its intent is kept until a "
    "later run can tell (remove the link or fix the folder, then run again)"
)


Identity = tuple[int, int, int, int]
"""Which file, in which version: device, inode, modification time (ns) and size."""


def _identity(found: os.stat_result) -> Identity:
    return (found.st_dev, found.st_ino, found.st_mtime_ns, found.st_size)


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


def _key_text(rel: str) -> str:
    """A key for a path that may hold undecodable bytes (as escapes), so that even such a
    file has a stable record reference to report it by."""
    return rel if _utf8(rel) else os.fsencode(rel).decode("utf-8", "backslashreplace")


def _hard_link(links: int) -> str:
    return (
        f"is a hard link ({links} names for one content): deleting this name would not "
        "destroy the content, so it is not deleted; remove the other names, or copy the file "
        "so each has its own"
    )


def _sidecar_problem(found: os.stat_result) -> str | None:
    """Why a sidecar (by its status, not followed) stops its file's disposal; None if fine.
    A folder of that name is not a sidecar."""
    mode = found.st_mode
    if stat.S_ISLNK(mode):
        return "has a sidecar that " + LINK
    if stat.S_ISDIR(mode):
        return None
    if not stat.S_ISREG(mode):
        return "has a sidecar that " + NOT_REGULAR
    if found.st_nlink > 1:
        return "has a sidecar that " + _hard_link(found.st_nlink)
    return None


# -- one file ----------------------------------------------------------------------------


class _File:
    """One record's file, its values read lazily and at most once."""

    __slots__ = ("_share", "_sidecar", "_stat", "_statted", "rel")

    def __init__(
        self, share: FileShareConnector, rel: str, found: os.stat_result | None = None
    ) -> None:
        self._share, self.rel = share, rel
        self._stat = found
        self._statted = found is not None
        self._sidecar: Mapping[str, Any] | None = None

    @property
    def path(self) -> Path:
        return self._share.root / self.rel

    def stat(self) -> os.stat_result | None:
        """The file's status (not following a link) when it is a regular file, else None."""
        if not self._statted:
            self._statted = True
            found = self._share.lstat(self.rel)
            if found is not None and stat.S_ISREG(found.st_mode):
                self._stat = found
        return self._stat

    def is_sidecar(self) -> bool:
        """A ``NAME.json`` beside a file ``NAME`` belongs to it and is never a record."""
        if not self.rel.endswith(SIDECAR_SUFFIX):
            return False
        base = self._share.lstat(self.rel[: -len(SIDECAR_SUFFIX)])
        return base is not None and not stat.S_ISDIR(base.st_mode)

    def is_record(self) -> bool:
        return self.stat() is not None and not self.is_sidecar()

    def sidecar_path(self) -> Path | None:
        """The sidecar file, when there is a regular one."""
        found = self._share.lstat(self.rel + SIDECAR_SUFFIX)
        if found is None or not stat.S_ISREG(found.st_mode):
            return None
        return self._share.root / (self.rel + SIDECAR_SUFFIX)

    def sidecar(self) -> Mapping[str, Any]:
        """The sidecar's object; empty when missing, not a plain file, unreadable or invalid."""
        if self._sidecar is None:
            self._sidecar = self._share.read_sidecar(self.rel)
        return self._sidecar

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
        configured = Path(os.path.abspath(url))  # noqa: PTH100 - resolve() follows links
        # The parents may be links an operator set up; the root itself is opened without
        # following one, so a root swapped for a link is never entered.
        self.root = configured.parent.resolve() / configured.name if configured.name else configured
        self.capabilities = Capabilities(
            transactional=False,
            reread=True,
            max_bind_params=10_000,
            anonymise=False,
            record_problems=True,
            versions=("mtime",),
        )
        self._root_fd: int | None = None
        self._root_id: tuple[int, int] | None = None
        self._problems: dict[tuple[str, str], RecordProblem] = {}
        # The file each listed candidate is (by path), until its batch is applied; and the
        # paths whose decided file the last apply proved unlinked, until they are re-read.
        self._decided: dict[str, Identity] = {}
        self._unlinked: set[str] = set()

    # -- the root and confinement ---------------------------------------------------------

    def _unavailable(self, what: str, exc: OSError | None = None) -> SourceUnavailable:
        why = f": {exc.strerror or type(exc).__name__}" if exc is not None else ""
        return SourceUnavailable(f"connector {self.id}: the share root {self.root} {what}{why}")

    def _fd(self) -> int:
        """The root's descriptor, opened once: what the path names later never matters."""
        if self._root_fd is None:
            try:
                fd = os.open(self.root, _DIR_FLAGS)
            except OSError as exc:
                raise self._root_refusal(exc) from exc
            found = os.fstat(fd)
            self._root_fd, self._root_id = fd, (found.st_dev, found.st_ino)
        return self._root_fd

    def _root(self) -> int:
        """:meth:`_fd`, refused when the path no longer names that directory: each public
        call starts here, so a run stops reading a share that was unmounted under it."""
        fd = self._fd()
        self._check_root()
        return fd

    def _root_refusal(self, exc: OSError) -> SourceUnavailable:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            try:
                if stat.S_ISLNK(os.lstat(self.root).st_mode):
                    return self._unavailable(
                        "is a symbolic link; name the directory itself as the root"
                    )
            except OSError:
                pass
            return self._unavailable("is not a directory")
        return self._unavailable("is not reachable", exc)

    def _check_root(self) -> None:
        """The root path still names the directory opened first (not a link, not remounted)."""
        try:
            found = self.root.lstat()
        except OSError as exc:
            raise self._unavailable("is not reachable", exc) from exc
        if (found.st_dev, found.st_ino) != self._root_id:
            raise self._unavailable(
                "changed since it was first opened (unmounted, remounted or replaced?); "
                "nothing more is read or deleted through it in this run"
            )

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

    def _open_dir(self, parts: Sequence[str]) -> int:
        """A new descriptor of the folder ``parts`` below the root, following no link."""
        fd = os.dup(self._fd())
        try:
            for part in parts:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = inner
        except OSError:
            os.close(fd)
            raise
        return fd

    def lstat(self, rel: str) -> os.stat_result | None:
        """The status of ``rel`` itself (a link is not followed); None when it cannot be had."""
        parts = rel.split("/")
        try:
            fd = self._open_dir(parts[:-1])
        except OSError:
            return None
        try:
            return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except OSError:
            return None
        finally:
            os.close(fd)

    def read_sidecar(self, rel: str) -> Mapping[str, Any]:
        """The JSON object of ``rel``'s sidecar; empty when missing, not a plain file, too
        large, unreadable or invalid. A pipe is never waited on."""
        parts = rel.split("/")
        try:
            fd = self._open_dir(parts[:-1])
        except OSError:
            return {}
        try:
            handle_fd = os.open(parts[-1] + SIDECAR_SUFFIX, _READ_FLAGS, dir_fd=fd)
        except OSError:
            return {}
        finally:
            os.close(fd)
        try:
            with os.fdopen(handle_fd, "rb") as handle:
                found = os.fstat(handle.fileno())
                if not stat.S_ISREG(found.st_mode) or found.st_nlink > 1:
                    return {}
                raw = handle.read(MAX_SIDECAR_BYTES + 1)
            if len(raw) > MAX_SIDECAR_BYTES:
                return {}
            doc = json.loads(raw.decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        return doc if isinstance(doc, dict) else {}

    # -- problems -------------------------------------------------------------------------

    def _note(self, rel: str, problem: str, effect: ProblemEffect = "kept") -> None:
        key = _key_text(rel)
        self._problems.setdefault((key, problem), RecordProblem((key,), problem, effect))

    def problems(self) -> list[RecordProblem]:
        found = list(self._problems.values())
        self._problems.clear()
        return found

    # -- description ----------------------------------------------------------------------

    def ping(self) -> None:
        fd = os.dup(self._root())
        try:
            with os.scandir(fd) as entries:
                next(entries, None)
        except OSError as exc:
            raise self._unavailable("cannot be listed", exc) from exc
        finally:
            os.close(fd)

    def describe(self, table: str) -> TableInfo:
        glob = compile_glob(table)
        self._root()
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
        for rel, found in self._scan(glob):
            for name, raw in _File(self, rel, found).sidecar().items():
                value = _json_value(raw)
                if value is not None:
                    kinds.setdefault(name, set()).add(_kind(value))
        return kinds

    def duplicate_keys(self, table: str, key: Sequence[str]) -> int:
        return 0

    # -- walking --------------------------------------------------------------------------

    def _scan(self, glob: Glob) -> list[tuple[str, os.stat_result]]:
        """The files ``glob`` matches that can be records, sorted by relative path, with
        their status; what it reaches but refuses is noted as a problem.

        Depth first, one open descriptor per level: each folder is listed through its
        descriptor, and a subfolder is opened relative to it without following a link.
        """
        records: list[tuple[str, os.stat_result]] = []
        frames: list[tuple[int, tuple[str, ...], Iterator[str]]] = []
        try:
            self._list(glob, os.dup(self._root()), (), records, frames)
            while frames:
                fd, parts, pending = frames[-1]
                name = next(pending, None)
                if name is None:
                    os.close(fd)
                    frames.pop()
                    continue
                try:
                    inner = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue  # gone since it was listed
                except OSError as exc:
                    self._note_unopened(fd, (*parts, name), exc)
                    continue
                self._list(glob, inner, (*parts, name), records, frames)
        finally:
            for fd, _, _ in frames:
                os.close(fd)
        records.sort()
        return records

    def _note_unopened(self, parent: int, parts: tuple[str, ...], exc: OSError) -> None:
        """A folder the glob could enter that could not be opened: a link put there since it
        was listed, or one it may not read. Its files cannot be disposed of: a problem."""
        try:
            is_link = stat.S_ISLNK(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode)
        except OSError:
            is_link = False
        why = LINK if is_link else f"is a folder that cannot be opened ({exc.strerror})"
        self._note("/".join(parts) + "/", why)

    def _list(
        self,
        glob: Glob,
        fd: int,
        parts: tuple[str, ...],
        records: list[tuple[str, os.stat_result]],
        frames: list[tuple[int, tuple[str, ...], Iterator[str]]],
    ) -> None:
        """List one folder (owning ``fd``): note its records and problems, and push it with
        the subfolders the glob could enter."""
        try:
            with os.scandir(fd) as listing:
                entries = {e.name: e for e in listing}
        except OSError as exc:
            os.close(fd)
            where = "a folder of the share" if parts else "the root"
            raise SourceUnavailable(
                f"connector {self.id}: cannot list {where}: {exc.strerror}"
            ) from exc
        folders: list[str] = []
        frames.append((fd, parts, iter(folders)))
        for name in sorted(entries):
            entry = entries[name]
            rel_parts = (*parts, name)
            rel = "/".join(rel_parts)
            try:
                found = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if glob.matches(rel):
                    self._note(rel, f"cannot be read ({exc.strerror})")
                continue
            mode = found.st_mode
            if stat.S_ISDIR(mode):
                if not glob.could_contain(rel_parts):
                    continue
                if _utf8(name):
                    folders.append(name)
                else:
                    self._note(rel + "/", NOT_UTF8_FOLDER)
                continue
            matched = glob.matches(rel) and not _sidecar_in(name, entries)
            if stat.S_ISLNK(mode):
                if matched:
                    self._note(rel, LINK)
                elif glob.could_contain(rel_parts) and entry.is_dir():
                    self._note(rel + "/", LINK)  # a link to a folder is never entered
                continue
            if matched:
                self._record(fd, rel, name, found, entries, records)

    def _record(
        self,
        fd: int,
        rel: str,
        name: str,
        found: os.stat_result,
        entries: Mapping[str, os.DirEntry[str]],
        records: list[tuple[str, os.stat_result]],
    ) -> None:
        """A matched entry that is not a link or folder: a record, or a problem saying why not."""
        if not _utf8(name):
            self._note(rel, NOT_UTF8)
        elif not stat.S_ISREG(found.st_mode):
            self._note(rel, NOT_REGULAR)
        elif found.st_nlink > 1:
            self._note(rel, _hard_link(found.st_nlink))
        else:
            sidecar = entries.get(name + SIDECAR_SUFFIX)
            problem = None
            if sidecar is not None:
                try:
                    problem = _sidecar_problem(
                        os.stat(sidecar.name, dir_fd=fd, follow_symlinks=False)
                    )
                except OSError:
                    problem = None
            if problem is None:
                records.append((rel, found))
            else:
                self._note(rel, problem)

    def _files(self, selection: Selection, *, candidates_only: bool) -> Iterator[_File]:
        self._check_key(selection)
        for rel, found in self._scan(compile_glob(selection.table)):
            record = _File(self, rel, found)
            if self._selected(record, selection, candidates_only=candidates_only):
                yield record

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

    def candidates(self, selection: Selection, batch_size: BatchSize) -> Iterator[list[Record]]:
        size = page_size(batch_size)
        page: list[Record] = []
        decided = self._decided = {}  # a new listing: what an earlier one saw is superseded
        for found in self._files(selection, candidates_only=True):
            listed = found.stat()
            if listed is not None:
                decided[found.rel] = _identity(listed)
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
                size = page_size(batch_size)
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
        self._root()
        out: dict[Key, Mapping[str, Any]] = {}
        for rel in rels:
            if rel in self._unlinked:  # proven: whatever is at the path now is a newcomer
                self._unlinked.discard(rel)
                continue
            unknown = self._gone(rel)
            if unknown is None:
                continue
            if unknown:
                self._note(rel, UNKNOWN.format(why=unknown), "unknown")
                out[(rel,)] = {"path": rel}
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

    def _gone(self, rel: str) -> str | None:
        """None when ``rel`` provably names nothing (its folder holds no such name, or a
        folder on its path no longer exists); "" when it is there; else why it cannot tell."""
        parts = rel.split("/")
        fd = os.dup(self._fd())
        try:
            for part in [*parts[:-1], None]:
                name = parts[-1] if part is None else part
                try:
                    found = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    return None
                except OSError as exc:
                    return f"a folder on its path cannot be read ({exc.strerror})"
                if part is None:
                    return ""
                if stat.S_ISLNK(found.st_mode):
                    return "a folder on its path is now a symbolic link, which is never followed"
                if not stat.S_ISDIR(found.st_mode):
                    return None  # a file where the folder was: nothing is at this path
                try:
                    inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    return None
                except OSError as exc:
                    return f"a folder on its path cannot be opened ({exc.strerror})"
                os.close(fd)
                fd = inner
            return ""
        finally:
            os.close(fd)

    def files(self, selection: Selection, keys: Sequence[Key]) -> dict[Key, list[Path]]:
        """Each existing record's file, and its sidecar when it has a regular one."""
        self._check_key(selection)
        rels = [self._safe_key(key) for key in keys]
        if rels:
            self._root()
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

    def apply_reported(
        self, selection: Selection, keys: Sequence[Key], change: Change, columns: Sequence[str]
    ) -> dict[Key, Mapping[str, Any]] | None:
        """A file system names no files it removed: the engine re-reads."""
        self.apply(selection, keys, change)
        return None

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
        self._root()
        self._unlinked.clear()
        deleted = 0
        for rel in rels:
            decided = self._decided.pop(rel, None)
            if not glob.matches(rel):
                continue
            found = _File(self, rel)
            now = found.stat()
            if now is None or found.is_sidecar():
                continue
            if not self._selected(found, selection, candidates_only=True):
                continue  # changed since it was listed, and no longer due: left alone
            if any(c.holds(found.value(c.column)) for c in selection.unless):
                continue
            if decided is not None and _identity(now) != decided:
                self._note(rel, REPLACED)
                continue
            if self._delete(rel, decided or _identity(now)):
                deleted += 1
        return deleted

    def _delete(self, rel: str, decided: Identity) -> bool:
        """Unlink the file ``decided`` on, then its sidecar, relative to their folder; never a
        folder, never another file.

        The file is opened first beneath its folder (without following a link) and checked:
        the very file decided on (:data:`Identity`: the listed one, or else the one apply
        checked), one name only, a sidecar that can go with it. Only then is its name
        unlinked, and the handle must then show no name left: otherwise a hard link was made,
        or the name swapped, in between, and the record is not disposed of. A file proven
        unlinked is remembered so that :meth:`reread` calls it gone whatever appears at its
        path next. Any refusal or failure is a problem on this record only.
        """
        parts = rel.split("/")
        name = parts[-1]
        try:
            fd = self._open_dir(parts[:-1])
        except FileNotFoundError:
            return False
        except OSError as exc:
            self._note(rel, f"cannot be reached to delete it: a folder on its path is a "
                       f"symbolic link or cannot be opened ({exc.strerror})")  # fmt: skip
            return False
        try:
            try:
                handle = os.open(name, _HANDLE_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                return False
            except OSError as exc:
                self._note(rel, f"could not be deleted ({exc.strerror})")
                return False
            try:
                opened = os.fstat(handle)
                if not self._deletable(fd, rel, name, opened):
                    return False
                if _identity(opened) != decided:
                    self._note(rel, REPLACED)
                    return False
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    return False
                except OSError as exc:
                    self._note(rel, f"could not be deleted ({exc.strerror})")
                    return False
                if os.fstat(handle).st_nlink != 0:
                    self._note(rel, WRONG_UNLINK)
                    return False
            finally:
                os.close(handle)
            self._unlinked.add(rel)
            self._delete_sidecar(fd, rel, name + SIDECAR_SUFFIX)
            return True
        finally:
            os.close(fd)

    def _deletable(self, fd: int, rel: str, name: str, found: os.stat_result) -> bool:
        """The file as opened can go: a regular file with one name and a plain sidecar."""
        problem = None
        if stat.S_ISLNK(found.st_mode):
            problem = LINK
        elif not stat.S_ISREG(found.st_mode):
            problem = NOT_REGULAR
        elif found.st_nlink > 1:
            problem = _hard_link(found.st_nlink)
        else:
            try:
                sidecar = os.stat(name + SIDECAR_SUFFIX, dir_fd=fd, follow_symlinks=False)
            except OSError:
                sidecar = None
            problem = None if sidecar is None else _sidecar_problem(sidecar)
        if problem is not None:
            self._note(rel, problem)
        return problem is None

    def _delete_sidecar(self, fd: int, rel: str, name: str) -> None:
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except OSError:
            return
        if not stat.S_ISREG(mode):
            return  # a folder of that name is not a sidecar; links were refused before
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._note(rel, f"was deleted, but its sidecar could not be ({exc.strerror}): "
                       "delete the sidecar by hand", "disposed")  # fmt: skip

    def close(self) -> None:
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None


def _sidecar_in(name: str, entries: Mapping[str, os.DirEntry[str]]) -> bool:
    """``name`` is ``BASE.json`` and ``BASE`` is a file (or link) in the same directory."""
    if not name.endswith(SIDECAR_SUFFIX):
        return False
    base = entries.get(name[: -len(SIDECAR_SUFFIX)])
    return base is not None and not base.is_dir(follow_symlinks=False)
