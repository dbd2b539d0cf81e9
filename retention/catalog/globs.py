"""Path globs for file shares, shared by the catalog (overlap rule) and the files backend.

``*``, ``?`` and ``[...]`` (``[!...]`` negates) match within one name, hidden names included;
a ``**`` segment matches any number of folders, none included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Glob:
    """A relative glob: ``*``, ``?`` and ``[...]`` within one name, ``**`` for any depth."""

    text: str
    regex: re.Pattern[str]
    segments: tuple[re.Pattern[str] | None, ...]
    """One pattern per path segment; None for ``**``."""

    def matches(self, rel: str) -> bool:
        return self.regex.fullmatch(rel) is not None

    def could_contain(self, parts: Sequence[str]) -> bool:
        """Whether a file below the directory ``parts`` could match."""
        for i, part in enumerate(parts):
            if i >= len(self.segments):
                return False
            segment = self.segments[i]
            if segment is None:
                return True
            if i == len(self.segments) - 1 or segment.fullmatch(part) is None:
                return False
        return True


@lru_cache(maxsize=64)
def compile_glob(text: str) -> Glob:
    """The glob ``text``; LookupError when it is absolute or leaves the root."""
    if not text or text.startswith(("/", "\\", "~")) or "\x00" in text:
        raise LookupError(f"{text!r} is not a relative glob inside the share")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise LookupError(f"{text!r} is not a relative glob inside the share (no '..')")
    try:
        return _compile(text, parts)
    except re.error as exc:
        raise LookupError(f"{text!r} is not a valid glob: {exc}") from None


def _compile(text: str, parts: Sequence[str]) -> Glob:
    pattern = ""
    segments: list[re.Pattern[str] | None] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            pattern += ".*" if last else "(?:[^/]+/)*"
            segments.append(None)
        else:
            translated = _translate(part)
            pattern += translated if last else translated + "/"
            segments.append(re.compile(translated, re.DOTALL))
    return Glob(text, re.compile(pattern, re.DOTALL), tuple(segments))


def _translate(segment: str) -> str:
    """One path segment of a glob as a regex that never crosses ``/``."""
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            start = i + 1 if segment[i : i + 1] == "!" else i
            end = segment.find("]", start + 1 if segment[start : start + 1] == "]" else start)
            if end < 0:
                out.append(re.escape(char))
                continue
            body = segment[start:end]
            for special in ("\\", "[", "]", "^"):
                body = body.replace(special, "\\" + special)
            if body.startswith("-"):
                body = "\\" + body  # literal, not a range from the "/" put before it
            out.append(f"[^/{body}]" if start > i else f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def globs_may_overlap(first: str, second: str) -> bool:
    """Whether two globs could match the same file; False only when they provably cannot.

    Compared segment by segment: two different plain names, a plain name a pattern does not
    match, or different depths without ``**`` keep them apart; anything else may overlap.
    """
    a, b = compile_glob(first), compile_glob(second)
    if a.text == b.text:
        return True
    left = [p for p in first.split("/") if p not in ("", ".")]
    right = [p for p in second.split("/") if p not in ("", ".")]
    for x, y, px, py in zip(left, right, a.segments, b.segments, strict=False):
        if px is None or py is None:
            return True
        plain_x, plain_y = not _MAGIC.search(x), not _MAGIC.search(y)
        if plain_x and plain_y and x != y:
            return False
        if plain_x and not plain_y and py.fullmatch(x) is None:
            return False
        if plain_y and not plain_x and px.fullmatch(y) is None:
            return False
    return len(left) == len(right)
