"""Record problems: what a connector would not dispose of, or could not prove gone.

A problem found while running belongs to its record and its policy, never to the run: the
policy goes on with its other records, ends ``partial`` and the run exits 4. A problem is
shown and logged by the record's reference (the keyed HMAC a certificate carries), never by
its key: a file name can be a person's name. An operator finds the record from the
reference with ``retention explain POLICY KEY``, which prints the reference of a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retention.connectors.base import Connector, RecordProblem
from retention.logs import get_logger
from retention.pseudonym import Secret, key_json

PARTIAL = "partial"
"""The status of a policy that handled its records, but some of them had a problem."""
TROUBLED = frozenset({"failed", PARTIAL})
"""Statuses that make a plan or run exit 4 (partial)."""

MAX_LISTED = 5
"""How many problems a policy's message lists; the log has every one."""

_log = get_logger("retention")

_RANK = {"disposed": 0, "unknown": 1, "kept": 2}
"""Of several problems of one record, the strongest decides: not disposed of (the source
said so as it acted) outweighs a re-read that could not tell."""


@dataclass(frozen=True)
class Noted:
    """A record problem as the engine reports it."""

    record_ref: str
    problem: str
    effect: str


def collect(
    secret: Secret,
    connector: Connector,
    connector_id: str,
    table: str,
    into: list[Noted],
    policy: str,
) -> dict[str, RecordProblem]:
    """Take ``connector``'s problems, log each new one by reference and add it to ``into``;
    return the strongest of each record by the key's text form (as
    :class:`~retention.decide.plan.Decided` has it)."""
    found: dict[str, RecordProblem] = {}
    for problem in connector.problems():
        text = key_json(problem.key)
        if _RANK[problem.effect] >= _RANK[found[text].effect if text in found else "disposed"]:
            found[text] = problem
        note(into, Noted(secret.record_ref_of(connector_id, table, text), problem.problem,
                         problem.effect), policy)  # fmt: skip
    return found


def note(into: list[Noted], noted: Noted, policy: str) -> None:
    """Add ``noted`` to a policy's problems (once) and log it."""
    if noted in into:
        return
    into.append(noted)
    _log.warning("RecordProblem", policy=policy, record_ref=noted.record_ref,
                 problem=noted.problem, effect=noted.effect)  # fmt: skip


def summary(problems: Sequence[Noted]) -> str:
    """A policy's message: how many records had a problem, the first few by reference."""
    count = len(problems)
    listed = "; ".join(f"record {p.record_ref} {p.problem}" for p in problems[:MAX_LISTED])
    more = f"; and {count - MAX_LISTED} more (each logged as RecordProblem)"
    return (
        f"{count} record problem{'s' if count != 1 else ''} (the other records were "
        f"handled): {listed}{more if count > MAX_LISTED else ''}"
    )
