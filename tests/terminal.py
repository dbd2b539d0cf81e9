"""Run a command on a pseudo-terminal of a given size and read the screen a person would see."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyte


def on_terminal(
    command: Sequence[str | Path], environ: Mapping[str, str], cols: int = 200, rows: int = 60
) -> tuple[int, list[str]]:
    """The exit code and every line of the screen and its scrollback, trailing blanks cut."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(
        [str(part) for part in command], stdin=secondary, stdout=secondary, stderr=secondary,
        env={**environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)},
    )  # fmt: skip
    os.close(secondary)
    screen = pyte.HistoryScreen(cols, rows, history=10_000)
    stream = pyte.ByteStream(screen)
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        stream.feed(chunk)
    code = proc.wait(timeout=60)
    os.close(primary)
    lines = ["".join(char.data for char in line.values()) for line in screen.history.top]
    return code, [line.rstrip() for line in [*lines, *screen.display]]
