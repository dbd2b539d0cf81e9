"""What the command line writes, for a person on a terminal or for a program reading a file.

By default a command prints tables and sentences. ``--json`` replaces them with one JSON object
on standard output (and an error with one JSON object on standard error), so that cron's
``>> retention.jsonl 2>&1`` collects a file every line of which parses: the log lines are JSON
already whenever standard error is not a terminal. ``--quiet`` prints nothing on success but
warnings and errors. The mode is set by the options' callbacks before any other option is
read, so even a malformed ``--as-of`` is reported in the chosen form.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from retention.decide.plan import PolicyPlan
    from retention.enforce.execute import RunOutcome

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Mode:
    json: bool = False
    quiet: bool = False

    @property
    def human(self) -> bool:
        """Whether tables and sentences go to standard output."""
        return not (self.json or self.quiet)


_mode: ContextVar[Mode] = ContextVar("retention_output_mode", default=Mode())  # noqa: B039 - frozen


def mode() -> Mode:
    return _mode.get()


def set_json() -> None:
    """JSON output from here on (the command line saw ``--json`` before parsing it)."""
    _mode.set(replace(_mode.get(), json=True))


def _setter(name: str) -> Callable[[click.Context, click.Parameter, bool], bool]:
    def callback(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            _mode.set(replace(_mode.get(), **{name: True}))
        return value

    return callback


def output_options(func: F) -> F:
    """``--json`` and ``--quiet`` for a command; the command calls :func:`emit` once."""
    func = click.option(
        "--quiet",
        "-q",
        is_flag=True,
        is_eager=True,
        expose_value=False,
        callback=_setter("quiet"),
        help="Print nothing but warnings and errors (the exit code says how it went).",
    )(func)
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        is_eager=True,
        expose_value=False,
        callback=_setter("json"),
        help="Print one JSON object instead of tables; errors too are one JSON line.",
    )(func)


def console(stderr: bool = False) -> Console:
    """A console for people: on standard output only in the human mode (else discarded)."""
    from rich.console import Console

    if not stderr and not mode().human:
        return Console(file=io.StringIO(), markup=False, highlight=False)
    out = Console(stderr=stderr, highlight=False, markup=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = max(out.width, 140)  # logs and cron mail: don't truncate names
    return out


def emit(command: str, summary: Mapping[str, Any]) -> None:
    """The command's one JSON object on standard output, with ``--json``."""
    if mode().json:
        line = {"event": "Summary", "command": command, "timestamp": _now(), **summary}
        sys.stdout.write(json.dumps(line, default=_plain, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def error(message: str, exit_code: int, kind: str) -> None:
    """An error on standard error: one JSON line with ``--json``, else one or more lines."""
    if mode().json:
        line = {"event": "Error", "error": kind, "message": message, "exit_code": exit_code,
                "timestamp": _now()}  # fmt: skip
        sys.stderr.write(json.dumps(line, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(message + "\n")
    sys.stderr.flush()


def policies(rows: Sequence[PolicyPlan]) -> list[dict[str, Any]]:
    """Per policy: where it is, what it does, how it went and its counts."""
    out = []
    for p in rows:
        item: dict[str, Any] = {
            "register": p.register, "policy": p.policy, "action": p.action,
            "status": p.status, "counts": p.counts.as_dict(), "message": p.message,
        }  # fmt: skip
        for extra in ("disposed", "unchanged", "changed", "unplanned", "held_in_plan", "archived"):
            if hasattr(p, extra):
                item[extra] = getattr(p, extra)
        item["problems"] = [  # by reference only: a key or file name can name a person
            {"record_ref": n.record_ref, "problem": n.problem, "effect": n.effect}
            for n in p.problems
        ]
        out.append(item)
    return out


def run_summary(outcome: RunOutcome) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id, "plan_id": outcome.plan_id, "as_of": outcome.as_of,
        "status": outcome.status, "exit_code": outcome.exit_code,
        "disposed": outcome.disposed, "reconciled": outcome.reconciled,
        "policies": policies(outcome.policies),
    }  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _plain(value: object) -> object:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)
