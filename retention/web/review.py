"""A plan as its reviewer reads it, and the review actions, each through :mod:`retention.api`.

The page is the report's (the same summary, rule sentences, record rows and what each action
changes, from :mod:`retention.reports`); a secret person's row shows only key and decision,
as in every report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from retention import api
from retention.decide.approval import PlanStatus
from retention.decide.plan import load_plan
from retention.errors import UsageError
from retention.i18n import Language, Messages
from retention.reports.report import plan_effects, plan_rows, policy_summary
from retention.reports.report_html import COUNTS, RegisterSummary, rule_text, summarise
from retention.web.roles import Identity
from retention.workspace import Workspace


@dataclass
class PolicyRecords:
    """One policy's due or held records, as many as the page shows."""

    name: str
    register: str
    policy: str
    total: int
    rows: list[tuple[dict[str, Any], bool]]


@dataclass
class PlanPage:
    registers: list[RegisterSummary]
    totals: dict[str, int]
    changes: dict[str, list[str]]
    due: list[PolicyRecords] = field(default_factory=list)
    held: list[PolicyRecords] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)


def plan_page(ws: Workspace, status: PlanStatus, lang: Language, limit: int) -> PlanPage:
    t = Messages(lang)
    _header, rows = load_plan(ws, status.plan_id)
    summary = [policy_summary(row) for row in rows]
    effects = plan_effects(ws, summary)
    summary = [{**item, "rule": rule_text(ws, item, lang)} for item in summary]
    changes = {f"{r}/{p}": effect.sentences(t) for (r, p), effect in effects.items()}
    page = PlanPage(
        registers=summarise(ws, summary),
        totals={n: sum(int(p["counts"].get(n, 0)) for p in summary) for n in COUNTS},
        changes=changes,
        problems=[p for p in summary if p["status"] not in ("planned", "completed")],
    )
    for decision, target in (("expire", page.due), ("held", page.held)):
        for item in summary:
            total = int(item["counts"].get(decision, 0))
            if total:
                found = list(
                    plan_rows(
                        ws, status.plan_id, item["register"], item["policy"], [decision], limit
                    )
                )
                target.append(
                    PolicyRecords(
                        f"{item['register']}/{item['policy']}",
                        item["register"],
                        item["policy"],
                        total,
                        found,
                    )
                )
    return page


def attribution(me: Identity) -> str:
    """Who acted, as the engine's ``by`` text records it: name, role, issuer and subject."""
    return f"{me.name} [{me.role}; {me.issuer}#{me.subject}]"[:200]


def decisions(ws: Workspace, status: PlanStatus) -> list[dict[str, Any]]:
    """The approvals (and rejections) recorded on the plan, oldest first."""
    if status.approved_by is None:
        return []
    return [
        {
            "kind": "approval",
            "by": status.approved_by,
            "at": status.approved_at,
            "comment": status.comment,
        }
    ]


def approve(ws: Workspace, plan_id: str, me: Identity, comment: str) -> None:
    api.approve(ws, plan_id, by=attribution(me), comment=comment or None)


def reject(ws: Workspace, plan_id: str, me: Identity, comment: str) -> None:
    raise UsageError("rejecting a plan is not available in this version")


def exclude(
    ws: Workspace, plan_id: str, me: Identity, policy: str, key: list[str], reason: str
) -> None:
    """Keep one record out of the plan's disposal: a hold on that record alone."""
    from retention.decide.approval import plan_status

    status = plan_status(ws, plan_id)
    if policy not in status.policies:
        raise UsageError(f"policy {policy} is not in plan {plan_id}")
    api.place_hold(
        ws,
        reason=f"{reason} (excluded from plan {plan_id})",
        placed_by=attribution(me),
        policy=policy,
        record=key,
    )
