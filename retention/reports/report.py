"""The stored plan read back for its reports: its rows, and the JSON (SPEC §6) and CSV forms.

Reports are written from the state database, not from memory, so a report of a million
decisions streams in flat memory, and a plan can be rendered again later. Records are named
by key only: no column value of a record ever reaches a report.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from retention.decide.plan import collector_paused
from retention.evidence.effects import Effect, effects
from retention.filemodes import open_private
from retention.state.database import plan_records
from retention.workspace import Workspace

#: The CSV ``changes`` of a policy whose planned rule the catalog no longer holds.
_RULE_GONE = "unknown: the catalog no longer holds the rule of this plan"
_PAGE = 5000


def plan_effects(ws: Workspace, summary: list[dict[str, Any]]) -> dict[tuple[str, str], Effect]:
    """What each of the plan's policies changes, where the catalog still holds the very rule
    the plan used (a changed rule would describe another action than the one approved)."""
    found = effects(ws, [(item["register"], item["policy"]) for item in summary])
    return {
        pair: effect
        for item in summary
        if (effect := found.get(pair := (item["register"], item["policy"]))) is not None
        and effect.fingerprint == item["policy_sha256"]
    }


def policy_summary(row: Any) -> dict[str, Any]:
    """One stored policy of the plan as every format lists it (``changes`` is added later)."""
    return {
        "register": row.register, "policy": row.policy, "action": row.action,
        "status": row.status, "message": row.message, "rule": row.rule,
        "legal_basis": row.legal_basis, "policy_sha256": row.policy_sha256,
        "counts": json.loads(row.counts),
    }  # fmt: skip


def records(ws: Workspace, plan_id: str, register: str, policy: str) -> Iterator[dict[str, Any]]:
    """The plan's ``expire`` and ``held`` records of one policy, in decision order."""
    for record, _secret in plan_rows(ws, plan_id, register, policy):
        yield record


def plan_rows(
    ws: Workspace,
    plan_id: str,
    register: str,
    policy: str,
    decisions: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[tuple[dict[str, Any], bool]]:
    """Stored records of one policy as report rows, with whether the person is secret.

    Read a page at a time, so a policy of millions of rows streams in flat memory. A secret
    person's row keeps the key and decision only. ``decisions`` narrows to those decisions;
    ``limit`` stops after that many rows.
    """
    for page in _pages(ws, plan_id, register, policy, decisions, limit):
        for _id, stored_key, decision, trigger_date, expires_on, hold, reason, secret in page:
            key = json.loads(stored_key)
            shown = key[0] if len(key) == 1 else key
            if secret:  # a secret person: the key and the decision, nothing more
                yield {
                    "key": shown, "decision": decision, "trigger_date": None,
                    "expires_on": None, "hold": None, "reason": None,
                }, True  # fmt: skip
                continue
            yield (
                {
                    "key": shown,
                    "decision": decision,
                    "trigger_date": trigger_date.isoformat() if trigger_date else None,
                    "expires_on": expires_on.isoformat() if expires_on else None,
                    "hold": hold,
                    "reason": reason,
                },
                False,
            )


def _pages(
    ws: Workspace,
    plan_id: str,
    register: str,
    policy: str,
    decisions: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[Sequence[Any]]:
    """The stored rows behind :func:`plan_rows`, in decision order, a page at a time:
    (id, key, decision, trigger_date, expires_on, hold_id, reason, secret)."""
    last, left = 0, limit
    c = plan_records.c
    while left is None or left > 0:
        page = _PAGE if left is None else min(_PAGE, left)
        query = (
            sa.select(
                c.id, c.key, c.decision, c.trigger_date, c.expires_on, c.hold_id, c.reason, c.secret
            )
            .where(c.plan_id == plan_id, c.register == register, c.policy == policy, c.id > last)
            .order_by(c.id)
            .limit(page)
        )
        if decisions is not None:
            query = query.where(c.decision.in_(list(decisions)))
        with ws.state.connect() as conn:
            rows = conn.execute(query).all()
        yield rows
        if left is not None:
            left -= len(rows)
        if len(rows) < page:
            return
        last = rows[-1].id


_ENCODER = json.JSONEncoder(ensure_ascii=False)


def _json_text(value: Any) -> str:
    """``_ENCODER.encode(value)``; orjson writes a string with the very same escapes."""
    if type(value) is str:
        return orjson.dumps(value).decode()
    return "null" if value is None else _ENCODER.encode(value)


def _json_lines(page: Sequence[Any]) -> Iterator[str]:
    """Each stored record of a page as ``_ENCODER.encode`` writes its report row (see
    :func:`plan_rows`), put together from its values' texts: encoding a dict per record took
    longer than reading the records."""
    text = _json_text
    for _id, stored_key, decision, trigger_date, expires_on, hold, reason, secret in page:
        key = orjson.loads(stored_key)
        shown = text(key[0]) if len(key) == 1 else "[" + ", ".join(map(text, key)) + "]"
        if secret:  # a secret person: the key and the decision, nothing more
            yield (
                f'{{"key": {shown}, "decision": {text(decision)}, "trigger_date": null, '
                '"expires_on": null, "hold": null, "reason": null}'
            )
            continue
        # An ISO date has nothing to escape.
        trigger = f'"{trigger_date.isoformat()}"' if trigger_date else "null"
        expires = f'"{expires_on.isoformat()}"' if expires_on else "null"
        yield (
            f'{{"key": {shown}, "decision": {text(decision)}, "trigger_date": {trigger}, '
            f'"expires_on": {expires}, "hold": {text(hold)}, "reason": {text(reason)}}}'
        )


def write_json(
    ws: Workspace, path: Path, meta: dict[str, Any], summary: list[dict[str, Any]]
) -> None:
    """The plan as SPEC §6 JSON, written a page of records at a time."""
    dump = _ENCODER.encode  # one encoder for every record: json.dumps makes one per call
    with open_private(path) as out, collector_paused() as page_done:
        out.write("{" + ", ".join(f"{dump(k)}: {dump(v)}" for k, v in meta.items()))
        out.write(', "policies": [')
        for i, item in enumerate(summary):
            out.write(",\n " if i else "\n ")
            out.write(dump(item)[:-1] + ', "records": [')
            separator = "\n  "
            for page in _pages(ws, meta["plan_id"], item["register"], item["policy"]):
                for line in _json_lines(page):
                    out.write(separator + line)
                    separator = ",\n  "
                page_done()
            out.write("]}")
        out.write("]}\n")


def write_csv(
    ws: Workspace,
    path: Path,
    plan_id: str,
    summary: list[dict[str, Any]],
    changes: dict[tuple[str, str], Effect],
) -> None:
    """The plan as CSV: one row per listed record, its register and policy repeated."""
    columns = [
        "register",
        "policy",
        "action",
        "key",
        "decision",
        "trigger_date",
        "expires_on",
        "hold",
        "reason",
        "register_name",
        "controller",
        "records_plan",
        "changes",
    ]
    with open_private(path, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for item in summary:
            register = ws.catalog.registers.get(item["register"])
            effect = changes.get((item["register"], item["policy"]))
            about = [  # the same for every row of the policy: worked out once
                register.name if register else "",
                register.controller if register else "",
                register.source if register else "",
                effect.compact() if effect is not None else _RULE_GONE,
            ]
            for record in records(ws, plan_id, item["register"], item["policy"]):
                key = record["key"]
                writer.writerow(
                    [
                        item["register"],
                        item["policy"],
                        item["action"],
                        key if isinstance(key, str) else json.dumps(key),
                        record["decision"],
                        record["trigger_date"] or "",
                        record["expires_on"] or "",
                        record["hold"] or "",
                        record["reason"] or "",
                        *about,
                    ]
                )
