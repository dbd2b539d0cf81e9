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
from retention.decide.identity import Identity as EngineIdentity
from retention.decide.plan import load_plan
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


def decisions(ws: Workspace, status: PlanStatus) -> list[dict[str, Any]]:
    """The plan's approvals, rejection and exclusions, oldest first, with who made them."""
    review = status.review
    found: list[dict[str, Any]] = []
    verdicts = [("approval", v) for v in (review.approvals if review else ())]
    if review is not None and review.rejection is not None:
        verdicts.append(("rejection", review.rejection))
    for kind, verdict in verdicts:
        found.append(
            {
                "kind": kind,
                "by": verdict.by.label,
                "role": verdict.by.role,
                "at": verdict.at,
                "comment": verdict.comment,
                "seq": verdict.seq,
            }
        )
    for entry in api.decision_journal(ws, status.plan_id):
        if entry.kind == "exclusion":
            who = EngineIdentity.from_dict(entry.actor)
            found.append(
                {
                    "kind": "exclusion",
                    "by": who.label,
                    "role": who.role,
                    "at": entry.at,
                    "comment": entry.body.get("reason"),
                    "seq": entry.seq,
                }
            )
    return sorted(found, key=lambda d: int(d["seq"]))


def missing(status: PlanStatus, lang: Language) -> list[str]:
    """What the plan still needs before it may run, in the page's language: the engine's
    :attr:`Review.missing`, item by item."""
    review = status.review
    if review is None or not review.missing:
        return []
    t = Messages(lang)
    out = []
    more = review.required.people - len(review.counted)
    if more > 0:
        out.append(t("web_needs_more" if review.approvals else "web_needs", count=more))
        if review.voided:
            out.append(t("web_needs_not_changer"))
    if any("archivist" in item for item in review.missing):
        out.append(t("web_needs_archivist"))
    if review.required.because:
        out.append(t("web_needs_because", rules="; ".join(review.required.because)))
    return out


def approve(ws: Workspace, plan_id: str, me: Identity, comment: str) -> PlanStatus:
    return api.approve(ws, plan_id, identity=me.engine(), comment=comment or None)


def reject(ws: Workspace, plan_id: str, me: Identity, comment: str) -> PlanStatus:
    return api.reject(ws, plan_id, identity=me.engine(), comment=comment)


def exclude(
    ws: Workspace, plan_id: str, me: Identity, policy: str, key: list[str], reason: str
) -> None:
    """Keep one record out of the plan's disposal: a hold on that record alone, recorded in
    the decision journal with who excluded it."""
    api.exclude(ws, plan_id, policy=policy, keys=[key], reason=reason, identity=me.engine())
