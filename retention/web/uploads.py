"""Files a signed-in user uploads to be verified, unpacked where nothing can escape.

An upload is hostile until shown otherwise: a zip may name members outside the folder, lie
about their sizes, compress gigabytes into a few bytes (bzip2 and LZMA members are not
decompressed in bounded steps by :mod:`zipfile`), or list a million members that
:class:`zipfile.ZipFile` would read into memory before anything could count them. So a zip
is read only when its end record admits a few members and a small directory, only stored
or deflated, unencrypted members with plain names are opened, and every byte written counts
against one budget for the whole request.
"""

from __future__ import annotations

import re
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Protocol

#: What one request may unpack to, all its files together: an export the web page is meant
#: to check (``retention verify`` takes larger ones).
UNPACKED_LIMIT = 1024 * 1024 * 1024
#: Members a zip may hold: an export, its manifest, and a few documents.
MOST_MEMBERS = 5

_PLAIN = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_END = b"PK\x05\x06"  # the end of central directory record (APPNOTE 4.3.16), 22 bytes + comment
_END_SIZE = 22
_MOST_COMMENT = 0xFFFF
_CHUNK = 1024 * 1024


class Refused(Exception):
    """The upload is not something this page will unpack."""


class Upload(Protocol):
    filename: str | None
    stream: IO[bytes]

    def save(self, dst: str | Path) -> None: ...


def plain_name(name: str) -> bool:
    """A file name that stays in the folder it is written to: letters, digits, ``_.-``, not
    only dots."""
    return _PLAIN.fullmatch(name) is not None and name.strip(".") != ""


def unpack(uploads: Iterable[Upload], root: Path) -> None:
    """Write every upload into ``root``: a ``.zip`` as its members, any other as itself.
    Raises :class:`Refused` (after which ``root`` may hold part of it) for anything else."""
    left = UNPACKED_LIMIT
    for upload in uploads:
        name = Path(upload.filename or "upload").name
        if name.lower().endswith(".zip"):
            left = _unzip(upload.stream, root, left)
            continue
        target = root / name
        if not plain_name(name) or target.exists():
            raise Refused(name)
        upload.save(target)
        left -= target.stat().st_size
        if left < 0:
            raise Refused(name)


def _unzip(stream: IO[bytes], root: Path, left: int) -> int:
    """Unpack one zip's members into ``root`` within ``left`` bytes; return what is left."""
    _check_end_record(stream)
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
            names = [m.filename for m in members]
            if (
                len(members) > MOST_MEMBERS
                or len(set(names)) != len(names)
                or not all(plain_name(n) for n in names)
                or any(m.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
                       for m in members)  # bzip2 and LZMA are not decompressed in bounds
                or any(m.flag_bits & 0x1 for m in members)  # encrypted
                or sum(m.file_size for m in members) > left
            ):  # fmt: skip
                raise Refused("zip")
            for member in members:
                with archive.open(member) as source, (root / member.filename).open("xb") as out:
                    while chunk := source.read(_CHUNK):
                        left -= len(chunk)
                        if left < 0:
                            raise Refused(member.filename)
                        out.write(chunk)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        RuntimeError,
        ValueError,
        OSError,
    ) as exc:
        # broken data (zlib's errors are OSErrors), a password (RuntimeError), a name that is
        # not UTF-8 (a ValueError), a member named twice in other letter case (FileExistsError)
        raise Refused("zip") from exc
    return left


def _check_end_record(stream: IO[bytes]) -> None:
    """Refuse, before :mod:`zipfile` reads the directory into memory, a zip whose end record
    announces more than :data:`MOST_MEMBERS` members or a directory larger than they need
    (or a ZIP64 directory, which no export of this size needs)."""
    try:
        stream.seek(0, 2)
        size = stream.tell()
        tail_size = min(size, _END_SIZE + _MOST_COMMENT)
        stream.seek(size - tail_size)
        tail = stream.read(tail_size)
        stream.seek(0)
    except (OSError, ValueError) as exc:
        raise Refused("zip") from exc
    at = tail.rfind(_END)
    if at < 0 or len(tail) - at < _END_SIZE:
        raise Refused("zip")
    record = struct.unpack("<4sHHHHIIH", tail[at : at + _END_SIZE])
    here, total, directory_size = record[3], record[4], record[5]
    if max(here, total) > MOST_MEMBERS or directory_size > MOST_MEMBERS * (46 + 0xFFFF):
        raise Refused("zip")
