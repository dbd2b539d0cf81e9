"""Reading catalog YAML safely, remembering where every key stood.

Only ``yaml.SafeLoader`` is used: a ``!!python/...`` tag is a construction error, never
executed. Mappings come back as :class:`Located` dicts that know the line of each key, so
a validation error can name the file *and line* a records manager has to fix.
``${VAR}`` and ``${VAR:-default}`` are expanded in string values after parsing, so an
environment value can never inject YAML structure.

A catalog file is input a hostile or careless hand may have written, so the loader bounds
what it costs: files of at most :data:`MAX_FILE_BYTES` (checked from the size before reading),
nesting at most :data:`MAX_DEPTH` deep (deeper would exhaust Python's stack), and aliases that
add at most :data:`MAX_ALIAS_NODES` nodes in all (a "billion laughs" bomb is refused at the
alias that overflows, before anything is expanded). An alias inside the node it names is
refused too: it would make an endless structure.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from retention.errors import Problem

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class Located(dict[str, Any]):
    """A mapping that remembers the 1-based line of itself and of each of its keys."""

    line: int = 0
    lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


#: The largest catalog file read (1 MiB): the shipped files are a few kilobytes each.
MAX_FILE_BYTES = 1 << 20
#: The deepest nesting of collections; a catalog needs about six levels.
MAX_DEPTH = 64
#: The most nodes that aliases (``*name``, ``<<: *name``) may add to one file in all.
MAX_ALIAS_NODES = 10_000


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that builds :class:`Located` mappings, within the bounds above."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliased = 0
        self._sizes: dict[int, int] = {}
        self._open: set[str] = set()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", _mark(event)
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        anchor = event.anchor
        if anchor in self._open:
            raise yaml.composer.ComposerError(
                None, None, f"alias *{anchor} refers to a node that contains it", _mark(event)
            )
        node = self.anchors.get(anchor)
        if node is None:
            return  # an undefined alias: the composer reports it
        self._aliased += self._size(node)
        if self._aliased > MAX_ALIAS_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes",
                _mark(event),
            )  # fmt: skip

    def _size(self, node: yaml.Node) -> int:
        """Nodes in ``node`` with every alias in it expanded; each node is counted once."""
        known = self._sizes.get(id(node))
        if known is None:
            children: list[yaml.Node] = []
            if isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            known = self._sizes[id(node)] = 1 + sum(self._size(c) for c in children)
        return known


def _mark(event: yaml.Event) -> yaml.error.Mark | None:
    """Where ``event`` starts (the pure-Python parser always says)."""
    mark = event.start_mark
    return mark if isinstance(mark, yaml.error.Mark) else None


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Located:
    own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)
    merged = len(node.value) - own  # pairs merged in by `<<: *base` come first; own keys win
    result = Located()
    result.line = node.start_mark.line + 1
    result.lines = {}
    own_keys: set[str] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if index >= merged:
            if key in own_keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            own_keys.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


# Dates stay strings until the model parses them, so a bad date ("2022-13-01") is a
# validation error at its key rather than a crash inside the YAML parser.
# Booleans are only true/false (YAML 1.2): a column called `no` or a country code `NO`
# must not turn into False, as YAML 1.1 would have it.
_DROPPED = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool"}
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


class YamlProblem(Exception):
    """Raised with the :class:`Problem` that made a file unreadable.

    ``recovered`` is the document as it reads once the likely mistake is mended (tabs
    indenting a line), when that makes it parse: not to be used, only checked, so that one
    pass reports the file's other problems too.
    """

    def __init__(self, problem: Problem, recovered: Any = None) -> None:
        self.problem = problem
        self.recovered = recovered
        super().__init__(str(problem))


#: PyYAML's parser messages, as what to fix (the first that matches is used).
_FIXES: tuple[tuple[str, str], ...] = (
    (
        "found character '\\t'",
        "a tab character: YAML indents with spaces only; replace the "
        "tab(s) on this line with spaces",
    ),
    (
        "mapping values are not allowed here",
        "a ':' where no new key can start: quote a value "
        "that contains ': ' (\"a: b\"), or check that this line is not indented deeper than "
        "the key it belongs to",
    ),
    (
        "could not find expected ':'",
        "a line without 'key: value', or a quoted text left open on this line or the one before",
    ),
    ("found unexpected end of stream", "a quote opened here is never closed"),
    (
        "found undefined alias",
        "'*' at the start of a value starts a YAML alias: put the value in quotes (\"* * * * *\")",
    ),
    (
        "expected <block end>, but found '?'",
        "a key where a list item ('- ...') was expected, "
        "or the other way round: give the items of one list or mapping the same indentation",
    ),
    (
        "expected <block end>",
        "indentation: this line is indented differently from the lines "
        "it belongs with; indent siblings by the same number of spaces",
    ),
    ("expected ',' or ']'", "a list in brackets that is not closed with ']'"),
    ("expected ',' or '}'", "a mapping in braces that is not closed with '}'"),
    ("found duplicate anchor", "the same '&anchor' name is used twice"),
)


def _fix_for(reason: str) -> str:
    """PyYAML's message made into what to change, keeping its words for reference."""
    for found, fix in _FIXES:
        if found in reason:
            return f"{fix} (YAML: {reason})"
    return reason


def load(path: Path, display: str, environ: Mapping[str, str] | None = None) -> Any:
    """Parse one YAML file safely and expand ``${VAR}`` in its strings.

    ``display`` is how the file is named in errors (relative to the catalog).
    """
    text = _read_bounded(path, display)
    environ = os.environ if environ is None else environ
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or str(exc)
        if "could not determine a constructor" in reason:
            reason = f"tag {exc.problem.split('tag ')[-1] if exc.problem else ''} is not allowed"
        problem = Problem(display, f"invalid YAML: {_fix_for(reason)}", line=line)
        recovered = _without_tabs(text, display, environ) if "'\\t'" in reason else None
        raise YamlProblem(problem, recovered) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem(Problem(display, f"invalid YAML: {exc}")) from exc
    return expand(document, display, environ)


def _without_tabs(text: str, display: str, environ: Mapping[str, str]) -> Any:
    """The document read with its tabs as spaces (the widths editors use), if one parses;
    lines stay where they were, so what is found in it names the right lines."""
    for width in (2, 4, 8):
        try:
            document = yaml.load(text.expandtabs(width), Loader=_LineLoader)  # noqa: S506
        except yaml.YAMLError:
            continue
        return expand(document, display, environ)
    return None


def _read_bounded(path: Path, display: str) -> str:
    """The file's text, refused from its size (before reading) beyond :data:`MAX_FILE_BYTES`;
    a named pipe or device is refused, as reading it could block or never end."""
    limit = f"catalog files may be at most {MAX_FILE_BYTES // (1 << 20)} MiB"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise YamlProblem(Problem(display, "cannot read: not a regular file"))
        if info.st_size > MAX_FILE_BYTES:
            raise YamlProblem(Problem(
                display, f"the file is {info.st_size:,} bytes, larger than 1 MiB: {limit}; "
                "split it into several files",
            ))  # fmt: skip
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:  # it grew after the size was read
            raise YamlProblem(Problem(display, f"the file is larger than 1 MiB: {limit}"))
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlProblem(Problem(display, f"cannot read: {exc}")) from exc


def expand(value: Any, display: str, environ: Mapping[str, str], line: int | None = None) -> Any:
    """Return ``value`` with ``${VAR}``/``${VAR:-default}`` expanded in every string."""
    if isinstance(value, Located):
        out = Located()
        out.line, out.lines = value.line, value.lines
        for key, item in value.items():
            out[key] = expand(item, display, environ, value.line_of(key))
        return out
    if isinstance(value, str):
        return _expand_string(value, display, environ, line)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [expand(item, display, environ, line) for item in value]
    return value


def _expand_string(text: str, display: str, environ: Mapping[str, str], line: int | None) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        found = environ.get(name)
        if found is not None and (found != "" or default is None):
            return found
        if default is not None:
            return default
        raise YamlProblem(
            Problem(display, f"environment variable {name} is not set and has no default", line)
        )

    return _VARIABLE.sub(replace, text)
