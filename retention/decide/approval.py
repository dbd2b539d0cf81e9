"""Approval before destruction: a records manager approves a stored dry run, and a run then
disposes of that plan's records only, each re-checked now and unchanged since it was planned.

A plan's life: ``pending`` (made, awaiting approval) → ``approved`` (``cooling-off`` until its
cooling-off ends) → ``executed`` by exactly one run. Two things end it early: age (``expired``,
older than the catalog's ``plan_expires_after``) and a change of rule (``stale``: a policy's
fingerprint differs from the catalog's, or the policy left it), because then neither the
approval nor the plan would be of what runs.

Each planned record carries a keyed fingerprint of what its decision read (trigger date,
subject, secret, ``unless`` and attachment columns). Executing the plan, a record the engine
decides ``expire`` today is disposed of only if the plan listed it as ``expire`` and its
fingerprint is the same: a changed record is skipped and counted, a record that fell due after
the plan waits for the next plan. Membership is asked per batch with one indexed query.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from retention.catalog import clock
from retention.catalog.clock import Duration
from retention.catalog.loading import BoundPolicy, Catalog
from retention.connectors.sql_sets import one_of
from retention.decide.fingerprint import decision_columns, record_fingerprint
from retention.decide.plan import Decided
from retention.errors import UsageError
from retention.logs import get_logger
from retention.state.database import as_utc, plan_policies, plan_records, plans, utcnow
from retention.state.installation import rotated_at
from retention.workspace import Workspace

PlanState = Literal["pending", "approved", "cooling-off", "executed", "expired", "stale"]
STATES: tuple[PlanState, ...] = ("pending", "cooling-off", "approved", "executed", "expired",
                                 "stale")  # fmt: skip
#: The only kind of stored plan a person can approve: previews (scheduled dry runs, hold
#: reports), runs and erasure dry runs are records of what was seen or done.
APPROVABLE = "dry-run"

_log = get_logger("retention")


# --------------------------------------------------------------------------------------------
# a plan's state


@dataclass(frozen=True)
class PlanStatus:
    """A stored plan as a records manager sees it: what it covers and where it stands."""

    plan_id: str
    kind: str
    job: str | None
    created_at: datetime
    as_of: Any
    expire: int
    """Records the plan would dispose of."""
    policies: tuple[str, ...]
    state: PlanState
    expires_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
    comment: str | None = None
    runnable_after: datetime | None = None
    executed_run: str | None = None
    stale: tuple[str, ...] = field(default=())
    """Policies whose rule changed since the plan, or that left the catalog."""
    before_rotation: bool = False
    """Made before ``RETENTION_SECRET`` was rotated: its references are the old secret's."""


def _status(
    header: sa.RowMapping,
    rows: Sequence[sa.RowMapping],
    catalog: Catalog,
    now: datetime,
    rotated_at: datetime | None = None,
) -> PlanStatus:
    settings = catalog.settings
    created = as_utc(header["created_at"])
    expires_at = created + settings.plan_expires_after.delta
    approved_at = as_utc(header["approved_at"]) if header["approved_at"] else None
    runnable_after = as_utc(header["runnable_after"]) if header["runnable_after"] else None
    if approved_at is not None and settings.approval_cooling_off is not None:
        by_setting = approved_at + settings.approval_cooling_off.delta
        runnable_after = max(runnable_after or by_setting, by_setting)
    as_of = header["as_of"]
    if approved_at is not None and isinstance(as_of, date):
        # A plan as of a later day runs from that day on: a run never acts ahead of time.
        its_day = max(clock.start_of_day(as_of, zone) for zone in
                      (catalog.timezone_of(header["job"]), catalog.settings.timezone))  # fmt: skip
        if now < its_day:
            runnable_after = max(runnable_after or its_day, its_day)
    current = {(b.register.id, b.policy.id): b for b in catalog.policies}
    stale = tuple(
        f"{r['register']}/{r['policy']}" for r in rows
        if (found := current.get((r["register"], r["policy"]))) is None
        or found.policy.fingerprint() != r["policy_sha256"]
    )  # fmt: skip
    before_rotation = rotated_at is not None and created < rotated_at
    state: PlanState
    if header["executed_run"]:
        state = "executed"
    elif now >= expires_at:
        state = "expired"
    elif stale or before_rotation:
        state = "stale"
    elif approved_at is None:
        state = "pending"
    elif runnable_after is not None and now < runnable_after:
        state = "cooling-off"
    else:
        state = "approved"
    return PlanStatus(
        plan_id=header["plan_id"], kind=header["kind"], job=header["job"], created_at=created,
        as_of=header["as_of"],
        expire=sum(int(json.loads(r["counts"]).get("expire", 0)) for r in rows),
        policies=tuple(f"{r['register']}/{r['policy']}" for r in rows), state=state,
        expires_at=expires_at, approved_by=header["approved_by"], approved_at=approved_at,
        comment=header["comment"], runnable_after=runnable_after,
        executed_run=header["executed_run"], stale=stale, before_rotation=before_rotation,
    )  # fmt: skip


def plan_status(ws: Workspace, plan_id: str) -> PlanStatus:
    """One stored plan's state now; UsageError when there is no such plan."""
    found = _statuses(ws, plans.c.plan_id == plan_id)
    if not found:
        raise UsageError(f"no plan {plan_id!r} in the state database")
    return found[0]


def list_plans(
    ws: Workspace, job: str | None = None, state: PlanState | None = None
) -> list[PlanStatus]:
    """The dry-run plans (newest first), optionally of one job and in one state."""
    if state is not None and state not in STATES:
        raise UsageError(f"--state {state!r} is not one of {', '.join(STATES)}")
    where = [plans.c.kind == APPROVABLE]
    if job is not None:
        where.append(plans.c.job == job)
    found = _statuses(ws, *where)
    return [s for s in found if state is None or s.state == state]


def _statuses(ws: Workspace, *where: sa.ColumnElement[bool]) -> list[PlanStatus]:
    now = utcnow()
    with ws.state.connect() as conn:
        headers = conn.execute(
            sa.select(plans).where(*where).order_by(plans.c.created_at.desc(), plans.c.plan_id)
        ).mappings().all()  # fmt: skip
        rows: dict[str, list[sa.RowMapping]] = {h["plan_id"]: [] for h in headers}
        ids = list(rows)
        for start in range(0, len(ids), 500):
            query = (
                sa.select(plan_policies)
                .where(plan_policies.c.plan_id.in_(ids[start : start + 500]))
                .order_by(plan_policies.c.plan_id, plan_policies.c.position)
            )
            for row in conn.execute(query).mappings():
                rows[row["plan_id"]].append(row)
    rotated = rotated_at(ws.state)
    return [_status(h, rows[h["plan_id"]], ws.catalog, now, rotated) for h in headers]


# --------------------------------------------------------------------------------------------
# approving


def approve(
    ws: Workspace,
    plan_id: str,
    by: str,
    comment: str | None = None,
    cooling_off: Duration | None = None,
) -> PlanStatus:
    """Record who approved which plan and when; refuse, changing nothing, a plan that is not a
    dry run, is approved already, has expired, or whose rules changed since it was made."""
    by = by.strip()
    if not by:
        raise UsageError("--by is empty: name the person who approves the plan")
    if len(by) > 200:
        raise UsageError("--by is longer than 200 characters")
    status = plan_status(ws, plan_id)
    _refuse_unapprovable(ws, status)
    now = utcnow()
    pause = cooling_off if cooling_off is not None else ws.catalog.settings.approval_cooling_off
    runnable_after = now + pause.delta if pause is not None else None
    with ws.state.begin() as conn:
        changed = conn.execute(
            sa.update(plans)
            .where(plans.c.plan_id == plan_id, plans.c.approved_by.is_(None),
                   plans.c.executed_run.is_(None))
            .values(approved_by=by, approved_at=now, comment=comment or None,
                    runnable_after=runnable_after)
        ).rowcount  # fmt: skip
    if changed != 1:  # approved by someone else between the check and the update
        raise UsageError(f"plan {plan_id} was approved by someone else meanwhile")
    _log.info("PlanApproved", plan_id=plan_id, approved_by=by,
              runnable_after=runnable_after.isoformat() if runnable_after else None)  # fmt: skip
    return plan_status(ws, plan_id)


def _refuse_unapprovable(ws: Workspace, status: PlanStatus) -> None:
    plan_id = status.plan_id
    if status.kind != APPROVABLE:
        raise UsageError(
            f"plan {plan_id} is a {status.kind} record, not a plan made for approval: only a "
            "plan made by `retention plan` or by a `mode: review` job can be approved"
        )
    if status.approved_by is not None:
        raise UsageError(
            f"plan {plan_id} was already approved by {status.approved_by} at "
            f"{_local(ws, status.approved_at)}"
        )
    _refuse_ended(ws, status)


def _refuse_ended(ws: Workspace, status: PlanStatus) -> None:
    """Expired and stale plans can be neither approved nor executed: make a new plan."""
    plan_id = status.plan_id
    if status.state == "expired":
        raise UsageError(
            f"plan {plan_id} expired at {_local(ws, status.expires_at)} (plan_expires_after: "
            f"{ws.catalog.settings.plan_expires_after}): make a new plan with `retention plan`"
        )
    if status.state == "stale" and status.before_rotation:
        raise UsageError(
            f"plan {plan_id} was made before RETENTION_SECRET was rotated: its record "
            "references and fingerprints are the old secret's; make a new plan"
        )
    if status.state == "stale":
        raise UsageError(
            f"the rules of {', '.join(status.stale)} changed since plan {plan_id} was made (or "
            "left the catalog): an approval would not be of what runs; make a new plan"
        )


def _local(ws: Workspace, moment: datetime | None) -> str:
    if moment is None:
        return "-"
    zone = ZoneInfo(ws.catalog.settings.timezone)
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}"


# --------------------------------------------------------------------------------------------
# executing


@dataclass(frozen=True)
class Admitted:
    """A batch's due records sorted against the approved plan."""

    kept: list[Decided]
    changed: int
    unplanned: int


@dataclass(frozen=True)
class ApprovedPlan:
    """An approved, runnable plan, as the run that executes it needs it."""

    plan_id: str
    approved_by: str
    job: str | None
    policies: tuple[str, ...]
    """The plan's policies (``REGISTER/POLICY``) that decided records, in plan order."""

    def claim(self, ws: Workspace, run_id: str) -> None:
        """Mark the plan executed by ``run_id`` before anything is done: at most one run ever
        executes a plan, even if two start at once or this one dies half way."""
        with ws.state.begin() as conn:
            claimed = conn.execute(
                sa.update(plans)
                .where(plans.c.plan_id == self.plan_id, plans.c.executed_run.is_(None),
                       plans.c.approved_by.is_not(None))
                .values(executed_run=run_id)
            ).rowcount  # fmt: skip
        if claimed != 1:
            raise UsageError(f"plan {self.plan_id} was executed by another run meanwhile")
        _log.info("PlanExecuting", plan_id=self.plan_id, run_id=run_id)

    def admit(self, ws: Workspace, bound: BoundPolicy, due: Sequence[Decided]) -> Admitted:
        """Keep the records the plan listed as ``expire`` whose values are as the plan saw
        them; one indexed query for the whole batch."""
        if not due:
            return Admitted([], 0, 0)
        c = plan_records.c
        query = sa.select(c.record_ref, c.fingerprint).where(
            c.plan_id == self.plan_id, c.register == bound.register.id,
            c.policy == bound.policy.id,
            one_of(c.record_ref, [d.ref for d in due], ws.state.dialect.name),
            c.decision == "expire",
        )  # fmt: skip
        with ws.state.connect() as conn:
            planned: dict[str, str | None] = {row[0]: row[1] for row in conn.execute(query)}
        kept: list[Decided] = []
        changed = unplanned = 0
        columns = decision_columns(bound.policy)
        for decided in due:
            if decided.ref not in planned:
                unplanned += 1  # due since the plan was made: it waits for the next plan
            elif planned[decided.ref] != record_fingerprint(ws.secret, columns, decided.record):
                changed += 1
                _log.warning("PlannedRecordChanged", plan_id=self.plan_id, policy=bound.name,
                             record_ref=decided.ref)  # fmt: skip
            else:
                kept.append(decided)
        return Admitted(kept, changed, unplanned)


def runnable(ws: Workspace, plan_id: str) -> ApprovedPlan:
    """The plan, if it may be executed now; otherwise UsageError saying why (and when)."""
    status = plan_status(ws, plan_id)
    if status.kind != APPROVABLE:
        raise UsageError(f"plan {plan_id} is a {status.kind} record, not a plan made for approval")
    if status.state == "executed":
        raise UsageError(f"plan {plan_id} was already executed by run {status.executed_run}")
    _refuse_ended(ws, status)
    if status.approved_by is None:
        raise UsageError(f"plan {plan_id} awaits approval: `retention approve {plan_id} --by NAME`")
    today, _ = ws.catalog.today(status.job)
    if isinstance(status.as_of, date) and status.as_of > today:
        raise UsageError(
            f"plan {plan_id} is as of {status.as_of}, after today ({today}): it may run from "
            f"{status.as_of} on, as a run never disposes of records ahead of their time"
        )
    if status.state == "cooling-off":
        raise UsageError(
            f"plan {plan_id} was approved by {status.approved_by} and is cooling off: it may "
            f"run from {_local(ws, status.runnable_after)}"
        )
    with ws.state.connect() as conn:
        rows = conn.execute(
            sa.select(plan_policies.c.register, plan_policies.c.policy)
            .where(plan_policies.c.plan_id == plan_id, plan_policies.c.status == "planned")
            .order_by(plan_policies.c.position)
        ).all()
    return ApprovedPlan(plan_id, status.approved_by, status.job,
                        tuple(f"{r.register}/{r.policy}" for r in rows))  # fmt: skip
