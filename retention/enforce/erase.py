"""Erasure requests (GDPR art. 17): one person's records, across the registers that allow it.

A register that is statutory, or that names an erasure exemption, refuses: its sources are
not even read, and the answer says which register refused and why. Elsewhere every enabled
policy with a ``subject`` column disposes of that person's records at once, due or not,
through the same intent → change → re-read → certificate path as a scheduled run; holds and
``unless`` exceptions still keep records. Permanent records and review-only policies are
never touched by an erasure request; the answer lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from retention.catalog.loading import BoundPolicy
from retention.decide.plan import Plan, make_plan
from retention.enforce.execute import RunOutcome, destroying_step, enforce
from retention.errors import UsageError
from retention.workspace import Workspace


@dataclass(frozen=True)
class Refusal:
    register: str
    policy: str | None
    reason: str


@dataclass
class ErasureOutcome:
    subject_ref: str
    refusals: list[Refusal] = field(default_factory=list)
    plan: Plan | None = None
    run: RunOutcome | None = None

    @property
    def exit_code(self) -> int:
        return self.run.exit_code if self.run is not None else 0


def erase(
    ws: Workspace,
    subject: str,
    *,
    register: str | None = None,
    as_of: date,
    dry_run: bool = False,
) -> ErasureOutcome:
    """Dispose of (or, with ``dry_run``, decide) every record of ``subject``."""
    if not subject.strip():
        raise UsageError("--subject must name a data subject")
    registers = list(ws.catalog.registers.values())
    if register is not None:
        if register not in ws.catalog.registers:
            raise UsageError(f"no register {register!r}; the catalog has: "
                             f"{', '.join(ws.catalog.registers)}")  # fmt: skip
        registers = [ws.catalog.registers[register]]
    outcome = ErasureOutcome(subject_ref=ws.secret.subject_ref(subject))
    chosen: list[BoundPolicy] = []
    for reg in registers:
        refusal = reg.erasure_refusal
        if refusal is not None:
            outcome.refusals.append(Refusal(reg.id, None, refusal))
            continue
        for bound in (p for p in ws.catalog.policies if p.register.id == reg.id):
            reason = _not_erasable(bound)
            if reason is not None:
                outcome.refusals.append(Refusal(reg.id, bound.policy.id, reason))
            else:
                chosen.append(bound)
    if register is not None and not chosen:
        reasons = "; ".join(r.reason for r in outcome.refusals) or "it has no policies"
        raise UsageError(f"register {register} does not honour erasure requests: {reasons}")
    if not chosen:
        return outcome
    if dry_run:
        outcome.plan = make_plan(ws, chosen, as_of, "erasure", subject=subject)
    else:
        outcome.run = enforce(ws, chosen, as_of, "erasure", subject=subject)
    return outcome


def _not_erasable(bound: BoundPolicy) -> str | None:
    policy = bound.policy
    if not policy.enabled:
        return "policy is disabled"
    if policy.subject is None:
        return "the policy names no subject column, so a person's records cannot be found"
    if policy.retain is not None and policy.retain.permanent:
        return "permanent record: kept in the archive under its legal basis"
    if destroying_step(policy) is None:
        return f"action {policy.action} does not dispose of records; a person decides"
    return None
