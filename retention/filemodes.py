"""Private files and directories: 0600 and 0700 whatever the umask.

Archive packages hold personal data, the state database holds holds, plans and record
references, and private keys and generated secrets are secrets: none of them may be readable by
other users of the machine, as a umask of 022 (or 000) would make them. Each is created here
with its mode set explicitly (an ``open``/``mkdir`` mode is only ever narrowed by the umask, and
a ``chmod`` afterwards sets exactly the mode). Existing files and directories are left as the
operator made them, except inside a tree retention writes itself (:func:`make_private_tree`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dirs(path: Path) -> None:
    """Make ``path`` and any missing parents as directories 0700; existing ones are kept."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another process: keep its mode
            continue
        directory.chmod(DIR_MODE)


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True if it was created here."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (or replace an old one's content) readable by its owner
    only; the mode is set before any byte is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, FILE_MODE)
        handle.write(data)


def open_private(path: Path, newline: str | None = None) -> TextIO:
    """Open ``path`` for writing text (UTF-8), created or emptied with mode 0600 before any
    byte is written: a plan report names records by key, and a key can be a person's."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "w", encoding="utf-8", newline=newline)


def make_private_tree(root: Path) -> None:
    """Set every directory under ``root`` (and ``root``) to 0700 and every file to 0600;
    symbolic links are not followed."""
    root.chmod(DIR_MODE)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            child = Path(folder) / name
            if not child.is_symlink():
                child.chmod(DIR_MODE)
        for name in files:
            child = Path(folder) / name
            if not child.is_symlink():
                child.chmod(FILE_MODE)
