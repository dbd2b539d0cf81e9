"""Drift between the records-management plan and what the catalog enforces.

Run by ``retention check`` and added to every plan report (the "records plan" section):

- a policy whose period or permanence differs from the plan decision it cites — an error,
  unless the policy states why (``deviation:``), which the reports then show;
- a policy whose start rule (``SailytysajanLaskentaperusteTeksti``) or retention reason
  (``SailytysajanPerusteTeksti``) the plan has changed since it was imported;
- a policy citing a class or record type the plan no longer has, or another plan;
- record types holding personal data that no enabled policy enforces (coverage);
- policies imported from the plan and not yet bound (disabled, with what they lack);
- a plan, or a class of it, past its end of validity (``VoimassaoloPaattyyPvm``).

Whatever the catalog says, the engine never destroys earlier than the plan allows
(:func:`retention.decide.plan.plan_floor`); this module only reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from retention.catalog.clock import Duration
from retention.catalog.loading import BoundPolicy, Catalog
from retention.catalog.records_plan import RecordsPlan, RecordType, normalise_code
from retention.errors import Problem
from retention.i18n import Messages

Kind = Literal[
    "period", "permanence", "start", "legal_basis", "not_in_plan", "other_plan", "unbound",
    "expired",
]  # fmt: skip
Severity = Literal["error", "warning", "deviation"]


@dataclass(frozen=True)
class Finding:
    """One difference between the catalog and its plan, said by an i18n message id."""

    kind: Kind
    severity: Severity
    message_id: str
    values: dict[str, str]
    policy: str | None = None
    """``REGISTER/POLICY``."""
    file: str | None = None
    line: int | None = None
    class_code: str | None = None
    record_type: str | None = None
    deviation: str | None = None

    @property
    def message(self) -> str:
        return self.text(Messages("en"))

    def text(self, t: Messages) -> str:
        return t(self.message_id, **self.values)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["message"] = self.message
        del out["message_id"], out["values"]
        return out

    def problem(self) -> Problem:
        policy = self.policy.split("/", 1)[1] if self.policy else None
        why = f" (deviation: {self.deviation})" if self.deviation else ""
        return Problem(self.file or "-", self.message + why, self.line, policy, "records_plan")


@dataclass(frozen=True)
class Uncovered:
    """A record type holding personal data that no enabled policy enforces."""

    tos: str
    class_code: str
    record_type: str
    title: str


@dataclass(frozen=True)
class PlanDrift:
    """The "records plan" section: plans followed, findings, coverage."""

    plans: tuple[dict[str, Any], ...]
    findings: tuple[Finding, ...]
    personal_record_types: int
    covered: int
    uncovered: tuple[Uncovered, ...] = field(default=())

    @property
    def errors(self) -> list[Problem]:
        return [f.problem() for f in self.findings if f.severity == "error"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "plans": list(self.plans),
            "coverage": {
                "personal_record_types": self.personal_record_types,
                "covered": self.covered,
                "uncovered": [asdict(u) for u in self.uncovered],
            },
            "findings": [f.as_dict() for f in self.findings],
        }


def plan_drift(catalog: Catalog, today: date) -> PlanDrift | None:
    """Compare the catalog with its records-management plans; None when it follows none."""
    cited = [b for b in catalog.policies if b.policy.records_plan is not None]
    if not catalog.records_plans and not cited and not catalog.unbound:
        return None
    findings: list[Finding] = []
    for bound in cited:
        findings.extend(_policy_findings(bound, catalog.records_plans.get(bound.register.id)))
    for unbound in catalog.unbound:
        citation = unbound.policy.records_plan
        lacks = ", ".join(unbound.policy.missing())
        findings.append(Finding("unbound", "warning", "drift_unbound", {"lacks": lacks},
                                unbound.name, unbound.file, unbound.line, citation.class_code,
                                citation.record_type))  # fmt: skip
    plans = _unique(catalog)
    for plan in plans:
        findings.extend(_expiry(plan, today))
    enforced = {
        (b.register.id, normalise_code(c.class_code), c.record_type)
        for b in catalog.policies
        if b.policy.enabled and (c := b.policy.records_plan) is not None
    }
    users = {
        plan.file: {r for r, p in catalog.records_plans.items() if p.file == plan.file}
        for plan in plans
    }
    personal = 0
    uncovered: list[Uncovered] = []
    for plan in plans:
        for plan_class, record in plan.record_types():
            if not record.personal:
                continue
            personal += 1
            code = normalise_code(plan_class.code)
            if not any((r, code, record.id) in enforced for r in users[plan.file]):
                uncovered.append(Uncovered(plan.id, plan_class.code, record.id, record.title))
    summary = tuple(
        {
            "tos": p.id, "title": p.title, "version": p.version, "file": p.file,
            "profile": p.profile,
            "approved_on": p.approved_on.isoformat() if p.approved_on else None,
            "valid_until": p.valid_until.isoformat() if p.valid_until else None,
            "expired": p.expired(today), "registers": sorted(users[p.file]),
        }
        for p in plans
    )  # fmt: skip
    return PlanDrift(summary, tuple(findings), personal, personal - len(uncovered),
                     tuple(uncovered))  # fmt: skip


def _unique(catalog: Catalog) -> list[RecordsPlan]:
    seen: dict[str, RecordsPlan] = {}
    for plan in catalog.records_plans.values():
        seen.setdefault(plan.file, plan)
    return list(seen.values())


def _expiry(plan: RecordsPlan, today: date) -> list[Finding]:
    out = []
    if plan.expired(today):
        assert plan.valid_until is not None
        values = {"plan": plan.id, "version": plan.version, "file": plan.file,
                  "date": plan.valid_until.isoformat()}  # fmt: skip
        out.append(Finding("expired", "warning", "drift_expired", values, file=plan.file))
    for plan_class in plan.classes:
        if plan_class.valid_until is not None and plan_class.valid_until < today:
            values = {"code": plan_class.code, "plan": plan.id,
                      "date": plan_class.valid_until.isoformat()}  # fmt: skip
            out.append(Finding("expired", "warning", "drift_class_expired", values,
                               file=plan.file, line=plan_class.line,
                               class_code=plan_class.code))  # fmt: skip
    return out


def _policy_findings(bound: BoundPolicy, plan: RecordsPlan | None) -> list[Finding]:
    policy = bound.policy
    citation = policy.records_plan
    assert citation is not None
    if plan is None:
        return []  # no plan file: a catalog problem already

    def finding(kind: Kind, severity: Severity, message_id: str, **values: str) -> Finding:
        return Finding(kind, severity, message_id, values, bound.name, bound.file, bound.line,
                       citation.class_code, citation.record_type,
                       policy.deviation if severity == "deviation" else None)  # fmt: skip

    if citation.tos is not None and citation.tos != plan.id:
        return [finding("other_plan", "error", "drift_other_plan", cited=citation.tos,
                        plan=plan.id, file=plan.file)]  # fmt: skip
    record = bound.plan_record
    if record is None:
        whole = plan.find_class(citation.class_code) is None
        return [finding("not_in_plan", "error",
                        "drift_not_in_plan_class" if whole else "drift_not_in_plan_record",
                        code=citation.class_code, record=citation.record_type, plan=plan.id,
                        version=plan.version)]  # fmt: skip
    out = [finding(k, s, m, **v) for k, s, m, v in _contradictions(bound, record)]
    start, reason = record.retention.start, record.retention.reason
    if citation.start_event is not None and start is not None and citation.start_event != start:
        out.append(finding("start", "warning", "drift_start", start=start,
                           cited=citation.start_event))  # fmt: skip
    if citation.retention_reason is not None and reason and citation.retention_reason != reason:
        out.append(finding("legal_basis", "warning", "drift_legal_basis", reason=reason,
                           cited=citation.retention_reason))  # fmt: skip
    return out


def _contradictions(
    bound: BoundPolicy, record: RecordType
) -> list[tuple[Kind, Severity, str, dict[str, str]]]:
    """Period and permanence: the rule against the plan's decision."""
    policy = bound.policy
    severity: Severity = "deviation" if policy.deviation else "error"
    period = record.retention.period
    retain = policy.retain
    if record.retention.permanent:
        if policy.destroys and policy.action != "archive":
            return [("permanence", severity, "drift_permanence_destroys",
                     {"action": policy.action})]  # fmt: skip
        return []
    if retain is not None and retain.permanent:
        return [("permanence", severity, "drift_permanence_keeps", {"period": period})]
    if policy.until is not None:
        if policy.destroys and record.retention.years > 0:
            # No trigger to count the plan's period from: the engine disposes of nothing.
            return [("period", "error", "drift_until_unprovable", {"period": period})]
        return []
    if retain is None or retain.duration is None:
        return []
    if retain.duration == Duration(years=record.retention.years):
        return []
    message = (
        "drift_period_shorter"
        if _shorter(retain.duration, record.retention.years)
        else "drift_period_longer"
    )
    return [("period", severity, message, {"retain": str(retain), "period": period})]


def _shorter(duration: Duration, years: int) -> bool:
    reference = date(2001, 1, 1)
    return reference + duration.delta < reference + Duration(years=years).delta
