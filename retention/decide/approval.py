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
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from retention.catalog import clock
from retention.catalog.clock import Duration
from retention.catalog.loading import BoundPolicy, Catalog
from retention.decide.fingerprint import decision_columns, record_fingerprint
from retention.decide.identity import REVIEWERS, Identity, NotPermitted, may_be
from retention.decide.plan import Decided
from retention.errors import UsageError
from retention.evidence import decisions
from retention.evidence.decisions import Entry
from retention.logs import get_logger
from retention.state.database import as_utc, plan_policies, plan_records, plans, utcnow
from retention.state.installation import rotated_at
from retention.state.refs import chunks, refs_in
from retention.workspace import Workspace

PlanState = Literal[
    "pending", "approved", "cooling-off", "executed", "expired", "stale", "rejected"
]
STATES: tuple[PlanState, ...] = ("pending", "cooling-off", "approved", "executed", "expired",
                                 "stale", "rejected")  # fmt: skip
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
    made_by: Identity | None = None
    """Who made the plan (None: made before review existed)."""
    changed_by: Identity | None = None
    """Who last changed it (an exclusion), if anyone."""
    changed_at: datetime | None = None
    review: Review | None = None
    """Its approvals: required, given, missing; its rejection."""


# --------------------------------------------------------------------------------------------
# review: what a plan needs, and what it has


@dataclass(frozen=True)
class Verdict:
    """One approval or rejection, as the decision journal records it."""

    by: Identity
    at: datetime
    comment: str | None
    seq: int
    """Its entry in the decision journal."""

    def as_dict(self) -> dict[str, Any]:
        """As a certificate's ``approvals`` lists it."""
        return {**self.by.as_dict(), "at": self.at.isoformat()}


@dataclass(frozen=True)
class Requirement:
    """What approvals a plan needs under the catalog's ``approvals:`` rules."""

    people: int = 1
    """Approvals from distinct people."""
    archivist: bool = False
    """One of them from an archivist."""
    because: tuple[str, ...] = ()
    """The rules that demand more than one approval, as ``retention.yaml`` names them."""

    @property
    def four_eyes(self) -> bool:
        """Whether a rule demands more than the single approval anyone may give."""
        return self.people > 1 or self.archivist


@dataclass(frozen=True)
class Review:
    """A plan's approval status: required approvals, those given, what is missing."""

    required: Requirement
    approvals: tuple[Verdict, ...] = ()
    rejection: Verdict | None = None
    barred: tuple[Identity, ...] = ()
    """Who made the plan and everyone who changed it (each exclusion's actor, not only the
    last): their approvals do not count (four eyes), whenever given — an approval given
    before its approver excluded records approved a plan that person then changed, and a
    change needs another person's eyes, whoever changes the plan after."""

    @property
    def counted(self) -> tuple[Verdict, ...]:
        """The approvals that count towards the rules: not the maker's or a changer's and,
        under a rule demanding more than one, only signed-in ones (one typed before the rule
        was added included): a typed name cannot prove a second person."""
        voided = self.voided
        return tuple(
            a for a in self.approvals
            if (a.by.authenticated or not self.required.four_eyes) and a not in voided
        )  # fmt: skip

    @property
    def voided(self) -> tuple[Verdict, ...]:
        """Approvals given by the plan's maker or one of its changers: they do not count."""
        return tuple(a for a in self.approvals if is_barred(a.by, self.barred))

    @property
    def missing(self) -> tuple[str, ...]:
        """What the plan still needs, in words; empty when complete (or rejected)."""
        if self.rejection is not None:
            return ()
        needs = []
        counted = self.counted
        more = self.required.people - len(counted)
        if more > 0:
            voided = bool(self.voided)
            needs.append(f"{more} more approval{'s' if more > 1 else ''}"
                         + (" from another person" if counted or voided else "")
                         + (" (an approval by a person who changed the plan does not "
                            "count)" if voided else ""))  # fmt: skip
        if self.required.archivist and not any(
            a.by.authenticated and a.by.role == "archivist" for a in counted
        ):
            needs.append("an archivist's approval")
        return tuple(needs)

    @property
    def complete(self) -> bool:
        return self.rejection is None and not self.missing

    @property
    def rejected(self) -> bool:
        return self.rejection is not None

    def as_dict(self) -> dict[str, Any]:
        """For the web and ``--json``: required, given, missing, complete, rejected."""
        return {
            "required": {"people": self.required.people, "archivist": self.required.archivist,
                         "because": list(self.required.because)},
            "approvals": [{**a.as_dict(), "comment": a.comment, "seq": a.seq,
                           "counts": a in self.counted} for a in self.approvals],
            "missing": list(self.missing), "complete": self.complete,
            "rejected": self.rejected,
            "rejection": None if self.rejection is None else {
                **self.rejection.as_dict(), "comment": self.rejection.comment,
                "seq": self.rejection.seq},
        }  # fmt: skip


def requirement(catalog: Catalog, rows: Sequence[sa.RowMapping]) -> Requirement:
    """What the catalog's rules demand of a plan of these ``plan_policies`` rows."""
    rules = catalog.settings.approvals
    because = []
    registers = sorted({r["register"] for r in rows} & set(rules.two_people_registers))
    if registers:
        because.append(f"approvals.two_people_registers: {', '.join(registers)}")
    expire = sum(int(json.loads(r["counts"]).get("expire", 0)) for r in rows)
    if rules.two_people_above is not None and expire > rules.two_people_above:
        because.append(f"approvals.two_people_above: {rules.two_people_above} "
                       f"(the plan disposes of {expire})")  # fmt: skip
    archivist = rules.archivist_for_archive and any(r["action"] == "archive" for r in rows)
    if archivist:
        because.append("approvals.archivist_for_archive")
    return Requirement(2 if len(because) > archivist else 1, archivist, tuple(because))


def _verdicts(entries: Sequence[Entry]) -> tuple[tuple[Verdict, ...], Verdict | None]:
    approvals: list[Verdict] = []
    rejection = None
    for e in entries:
        if e.kind not in ("approval", "rejection"):
            continue
        # The moment as signed: the database may hand the column back in another zone.
        at = datetime.fromisoformat(str(e.body.get("at"))) if e.body.get("at") else e.at
        verdict = Verdict(Identity.from_dict(e.actor), at, e.body.get("comment"), e.seq)
        if e.kind == "approval":
            approvals.append(verdict)
        elif rejection is None:
            rejection = verdict
    return tuple(approvals), rejection


def _identity(text: str | None) -> Identity | None:
    return Identity.from_dict(json.loads(text)) if text else None


def _status(
    header: sa.RowMapping,
    rows: Sequence[sa.RowMapping],
    catalog: Catalog,
    now: datetime,
    rotated_at: datetime | None = None,
    entries: Sequence[Entry] = (),
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
    approvals, rejection = _verdicts(entries)
    # Only approvals in the signed journal count: an ``approved_by`` with none behind it
    # (written by hand, or given before the journal existed) is no approval.
    review = Review(requirement(catalog, rows), approvals, rejection, barred(header, entries))
    state: PlanState
    if header["executed_run"]:
        state = "executed"
    elif header["rejected_at"] is not None or rejection is not None:
        state = "rejected"
    elif now >= expires_at:
        state = "expired"
    elif stale or before_rotation:
        state = "stale"
    elif approved_at is None or not review.complete:  # a rule added since demands more
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
        made_by=_identity(header["made_by"]), changed_by=_identity(header["changed_by"]),
        changed_at=as_utc(header["changed_at"]) if header["changed_at"] else None,
        review=review,
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
        journal = decisions.for_plans(conn, ids)
    rotated = rotated_at(ws.state)
    return [_status(h, rows[h["plan_id"]], ws.catalog, now, rotated, journal[h["plan_id"]])
            for h in headers]  # fmt: skip


# --------------------------------------------------------------------------------------------
# approving


def approve(
    ws: Workspace,
    plan_id: str,
    by: str | Identity,
    comment: str | None = None,
    cooling_off: Duration | None = None,
) -> PlanStatus:
    """Record an approval of a plan in the decision journal; once the plan has every
    approval the catalog's rules require, it is approved (and may run after its cooling-off).

    Refused, changing nothing: a plan that is not a dry run, is approved, rejected, expired
    or stale; an approver whose role may not approve; the person who made or changed
    the plan, or who approved it already (four eyes); and an unauthenticated approval (typed
    at a command line) where a rule demands more than one approval or an archivist's, which
    only signed-in people can satisfy. A string ``by`` is a name typed at a command line."""
    identity = by if isinstance(by, Identity) else _typed(by)
    comment = _comment(comment)
    key = ws.signing_key()
    decisions.sign_key_ready(ws.state, key)
    status = plan_status(ws, plan_id)
    _refuse_unapprovable(ws, status)
    _refuse_role(identity, "approve")
    now = utcnow()
    runnable_after = _runnable_after(ws, now, cooling_off)
    with ws.state.begin() as conn:
        # The journal's head row is locked from here: no other decision lands in between.
        entry = decisions.append(conn, key, "approval", identity.as_dict(), plan_id=plan_id,
                                 details={"comment": comment})  # fmt: skip
        header = conn.execute(sa.select(plans).where(plans.c.plan_id == plan_id)).mappings().one()
        earlier = decisions.for_plans(conn, [plan_id])[plan_id]
        review = _review_with(ws, conn, header, earlier)
        _refuse_four_eyes(status, header, review, identity, entry.seq)
        before = replace(review, approvals=tuple(a for a in review.approvals
                                                 if a.seq != entry.seq))  # fmt: skip
        if header["approved_by"] is not None and before.complete:
            raise UsageError(f"plan {plan_id} was approved by someone else meanwhile")
        if review.complete:
            _mark_approved(conn, plan_id, review, now, runnable_after)
    _log.info("PlanApproved", plan_id=plan_id, approved_by=identity.name,
              authenticated=identity.authenticated, complete=review.complete,
              runnable_after=runnable_after.isoformat() if runnable_after and review.complete
              else None)  # fmt: skip
    return plan_status(ws, plan_id)


def _runnable_after(
    ws: Workspace, now: datetime, cooling_off: Duration | None = None
) -> datetime | None:
    pause = cooling_off if cooling_off is not None else ws.catalog.settings.approval_cooling_off
    return now + pause.delta if pause is not None else None


def _mark_approved(
    conn: sa.Connection,
    plan_id: str,
    review: Review,
    now: datetime,
    runnable_after: datetime | None,
) -> None:
    """Record a complete review on the plan (in the caller's transaction): approved now, by
    the people whose approvals count, runnable after its cooling-off."""
    counted = review.counted
    names = ", ".join(dict.fromkeys(a.by.name for a in counted))
    comments = " / ".join(a.comment for a in counted if a.comment) or None
    changed = conn.execute(
        sa.update(plans)
        .where(plans.c.plan_id == plan_id, plans.c.executed_run.is_(None),
               plans.c.rejected_at.is_(None))
        .values(approved_by=names[:200], approved_at=now, comment=comments,
                runnable_after=runnable_after)
    ).rowcount  # fmt: skip
    if changed != 1:  # executed or rejected meanwhile (approvals queue on the journal)
        raise UsageError(f"plan {plan_id} was executed or rejected meanwhile")


def complete_if_approved(ws: Workspace, conn: sa.Connection, plan_id: str) -> bool:
    """After a change that only took records out of a pending plan (an exclusion): when the
    approvals it already has now satisfy the rules — the change brought it under
    ``two_people_above`` — the plan is approved, from now, as an approval completing it
    would have made it. Otherwise it would wait with nothing missing for a third person
    (the approver cannot approve twice, the changer not at all). In the caller's
    transaction, whose decision-journal entry already holds the journal's head row."""
    header = conn.execute(sa.select(plans).where(plans.c.plan_id == plan_id)).mappings().one()
    if header["approved_at"] is not None:
        return False
    review = _review_with(ws, conn, header, decisions.for_plans(conn, [plan_id])[plan_id])
    if not review.counted or not review.complete:
        return False
    now = utcnow()
    _mark_approved(conn, plan_id, review, now, _runnable_after(ws, now))
    return True


def reject(ws: Workspace, plan_id: str, by: str | Identity, comment: str) -> PlanStatus:
    """Reject a plan: it can then be neither approved nor executed (make a new plan). Anyone
    who may approve may reject, its maker included: stopping a destruction needs no second
    pair of eyes. A comment saying why is required."""
    identity = by if isinstance(by, Identity) else _typed(by)
    why = _comment(comment)
    if why is None:
        raise UsageError("a rejection needs a --comment saying why")
    key = ws.signing_key()
    decisions.sign_key_ready(ws.state, key)
    status = plan_status(ws, plan_id)
    if status.kind != APPROVABLE:
        raise UsageError(f"plan {plan_id} is a {status.kind} record, not a plan made for approval")
    if status.state == "executed":
        raise UsageError(f"plan {plan_id} was already executed by run {status.executed_run}")
    if status.state == "rejected":
        raise UsageError(f"plan {plan_id} was already rejected")
    _refuse_role(identity, "reject")
    now = utcnow()
    with ws.state.begin() as conn:
        decisions.append(conn, key, "rejection", identity.as_dict(), plan_id=plan_id,
                         details={"comment": why})  # fmt: skip
        changed = conn.execute(
            sa.update(plans)
            .where(plans.c.plan_id == plan_id, plans.c.executed_run.is_(None),
                   plans.c.rejected_at.is_(None))
            .values(rejected_at=now)
        ).rowcount  # fmt: skip
        if changed != 1:
            raise UsageError(f"plan {plan_id} was executed or rejected meanwhile")
    _log.info("PlanRejected", plan_id=plan_id, rejected_by=identity.name,
              authenticated=identity.authenticated)  # fmt: skip
    return plan_status(ws, plan_id)


def mark_changed(conn: sa.Connection, status: PlanStatus, identity: Identity) -> None:
    """Record ``identity`` as the plan's last changer (in the caller's transaction): from
    now on they cannot approve it. Refuses a plan that is no longer pending."""
    if status.kind != APPROVABLE or status.state != "pending":
        raise UsageError(
            f"plan {status.plan_id} is {status.state}: only a pending plan can be changed"
            + (" (place a hold instead: it applies to every run)"
               if status.state in ("approved", "cooling-off") else "")
        )  # fmt: skip
    changed = conn.execute(
        sa.update(plans)
        .where(plans.c.plan_id == status.plan_id, plans.c.approved_by.is_(None),
               plans.c.executed_run.is_(None), plans.c.rejected_at.is_(None))
        .values(changed_by=json.dumps(identity.as_dict(), sort_keys=True), changed_at=utcnow())
    ).rowcount  # fmt: skip
    if changed != 1:
        raise UsageError(f"plan {status.plan_id} was approved or rejected meanwhile")


def _typed(by: str) -> Identity:
    by = by.strip()
    if not by:
        raise UsageError("--by is empty: name the person who approves the plan")
    if len(by) > 200:
        raise UsageError("--by is longer than 200 characters")
    return Identity.cli(by)


def _comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    if len(text) > 2000:
        raise UsageError("the comment is longer than 2000 characters")
    return text or None


def _refuse_role(identity: Identity, verb: str) -> None:
    if identity.authenticated and identity.role not in REVIEWERS:
        raise NotPermitted(
            f"{identity.name} signed in as {identity.role or 'no role'} and may not {verb} "
            f"plans: that takes a records manager, an archivist or the data protection officer"
        )


def _review_with(
    ws: Workspace, conn: sa.Connection, header: sa.RowMapping, entries: Sequence[Entry]
) -> Review:
    rows = conn.execute(
        sa.select(plan_policies).where(plan_policies.c.plan_id == header["plan_id"])
    ).mappings().all()  # fmt: skip
    approvals, rejection = _verdicts(entries)
    return Review(requirement(ws.catalog, rows), approvals, rejection, barred(header, entries))


def is_barred(by: Identity, barred: Sequence[Identity]) -> bool:
    """Whether ``by`` may be one of ``barred`` (a plan's maker and changers, :func:`barred`):
    then their approval of it does not count."""
    return any(may_be(by, actor) for actor in barred)


def barred(header: Any, entries: Sequence[Entry]) -> tuple[Identity, ...]:
    """Whose approvals of a plan do not count: its maker (``header``: its ``plans`` row) and
    the actor of each of its exclusions in the decision journal (``entries``), and the last
    changer the row names (a change made before the journal recorded exclusions)."""
    found = [_identity(header["made_by"]), _identity(header["changed_by"])]
    found += [Identity.from_dict(e.actor) for e in entries if e.kind == "exclusion"]
    return tuple(dict.fromkeys(f for f in found if f is not None))


def _refuse_four_eyes(
    status: PlanStatus, header: sa.RowMapping, review: Review, identity: Identity, seq: int
) -> None:
    """Four eyes, checked on what the journal holds once this approval (entry ``seq``) is in
    it; raising rolls the entry back."""
    plan_id = status.plan_id
    if review.rejected:
        raise UsageError(f"plan {plan_id} was rejected meanwhile")
    maker = _identity(header["made_by"])
    for actor in review.barred:
        if may_be(identity, actor):
            role = "made" if actor == maker else "changed"
            raise FourEyes(
                f"{identity.label} {role} plan {plan_id} and so cannot approve it: a person "
                "who made or changed a plan needs another person's approval (four eyes)"
            )
    for given in review.approvals:
        if given.seq != seq and may_be(identity, given.by):
            raise FourEyes(
                f"{identity.label} approved plan {plan_id} already (as {given.by.label}): "
                "its approvals must come from distinct people"
            )
    required = review.required
    if required.four_eyes and not identity.authenticated:
        raise FourEyes(
            f"plan {plan_id} needs {required.people} approval(s) from distinct signed-in "
            f"people{' including an archivist' if required.archivist else ''} "
            f"({'; '.join(required.because)}): an approval typed at the command line is "
            "unauthenticated and cannot satisfy that rule; approve in the workspace "
            "(`retention serve`) signed in as yourself"
        )
    others = [a for a in review.counted if a.seq != seq]
    last = len(others) + 1 >= required.people
    archivist = identity.role == "archivist" or any(
        a.by.role == "archivist" and a.by.authenticated for a in others
    )
    if required.archivist and last and not archivist:
        raise FourEyes(
            f"plan {plan_id} transfers records to the archive and needs an archivist's "
            f"approval ({'; '.join(required.because)}): {identity.label} is "
            f"{identity.role or 'no archivist'}, and the approvals left must include one"
        )


class FourEyes(UsageError):
    """An approval the four-eyes rules refuse: the maker, a second approval by the same
    person, an unauthenticated approval where a rule demands more, a missing archivist."""


def _refuse_unapprovable(ws: Workspace, status: PlanStatus) -> None:
    plan_id = status.plan_id
    if status.kind != APPROVABLE:
        raise UsageError(
            f"plan {plan_id} is a {status.kind} record, not a plan made for approval: only a "
            "plan made by `retention plan` or by a `mode: review` job can be approved"
        )
    if status.state == "rejected":
        by = status.review.rejection if status.review else None
        raise UsageError(
            f"plan {plan_id} was rejected"
            + (f" by {by.by.label} at {_local(ws, by.at)}" if by else "")
            + ": a rejected plan can be neither approved nor executed; make a new plan"
        )
    if status.approved_by is not None and status.review is not None and status.review.complete:
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
    held: int = 0
    """Listed by the plan as held (excluded from it, or held when it was made) and no longer
    held: kept all the same, as the plan was approved without them."""


@dataclass(frozen=True)
class ApprovedPlan:
    """An approved, runnable plan, as the run that executes it needs it."""

    plan_id: str
    approved_by: str
    job: str | None
    policies: tuple[str, ...]
    """The plan's policies (``REGISTER/POLICY``) that decided records, in plan order."""
    approvals: tuple[dict[str, Any], ...] = ()
    """Who approved it (issuer, subject, name, role, authenticated, at): certificates carry
    them as ``approvals``. A plan approved before review existed: its typed name only."""

    def claim(self, ws: Workspace, run_id: str) -> None:
        """Mark the plan executed by ``run_id`` before anything is done: at most one run ever
        executes a plan, even if two start at once or this one dies half way."""
        with ws.state.begin() as conn:
            claimed = conn.execute(
                sa.update(plans)
                .where(plans.c.plan_id == self.plan_id, plans.c.executed_run.is_(None),
                       plans.c.approved_by.is_not(None), plans.c.rejected_at.is_(None))
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
        dialect = ws.state.dialect.name
        planned: dict[str, str | None] = {}
        held: set[str] = set()
        with ws.state.connect() as conn:
            for chunk in chunks(dict.fromkeys(d.ref for d in due)):
                query = sa.select(c.record_ref, c.fingerprint, c.decision).where(
                    c.plan_id == self.plan_id, refs_in(c.record_ref, chunk, dialect),
                    c.register == bound.register.id, c.policy == bound.policy.id,
                    c.decision.in_(("expire", "held")),
                )  # fmt: skip
                for row in conn.execute(query):
                    if row.decision == "expire":
                        planned[row.record_ref] = row.fingerprint
                    else:
                        held.add(row.record_ref)
        kept: list[Decided] = []
        changed = unplanned = held_now = 0
        columns = decision_columns(bound.policy)
        for decided in due:
            if decided.ref in held:
                held_now += 1  # its exclusion or hold was released: this plan still keeps it
            elif decided.ref not in planned:
                unplanned += 1  # due since the plan was made: it waits for the next plan
            elif planned[decided.ref] != record_fingerprint(ws.secret, columns, decided.record):
                changed += 1
                _log.warning("PlannedRecordChanged", plan_id=self.plan_id, policy=bound.name,
                             record_ref=decided.ref)  # fmt: skip
            else:
                kept.append(decided)
        return Admitted(kept, changed, unplanned, held_now)


def runnable(ws: Workspace, plan_id: str) -> ApprovedPlan:
    """The plan, if it may be executed now; otherwise UsageError saying why (and when)."""
    status = plan_status(ws, plan_id)
    if status.kind != APPROVABLE:
        raise UsageError(f"plan {plan_id} is a {status.kind} record, not a plan made for approval")
    if status.state == "executed":
        raise UsageError(f"plan {plan_id} was already executed by run {status.executed_run}")
    if status.state == "rejected":
        _refuse_unapprovable(ws, status)
    _refuse_ended(ws, status)
    review = status.review
    if status.approved_by is None or review is None or not review.complete:
        missing = ", ".join(review.missing) if review is not None else ""
        raise UsageError(
            f"plan {plan_id} awaits approval"
            + (f" ({missing})" if missing and review and review.approvals else "")
            + f": `retention approve {plan_id} --by NAME`"
            + (" or, where a rule demands more, in the workspace" if review and
               review.required.four_eyes else "")
        )  # fmt: skip
    _refuse_unverified(ws, plan_id)
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
    approvals = tuple(a.as_dict() for a in review.counted)
    return ApprovedPlan(plan_id, status.approved_by, status.job,
                        tuple(f"{r.register}/{r.policy}" for r in rows), approvals)  # fmt: skip


def _refuse_unverified(ws: Workspace, plan_id: str) -> None:
    """The plan's journal entries must verify (hash, signature by a trusted key) before it
    runs: an approval written into the state database by hand is no approval."""
    from retention.evidence import keyring

    chain = keyring.load(ws.state)
    with ws.state.connect() as conn:
        entries = decisions.for_plans(conn, [plan_id])[plan_id]
    faults = [f for e in entries for f in decisions.entry_faults(e, chain)]
    if faults:
        raise UsageError(
            f"plan {plan_id} is not executed: its approvals in the decision journal do not "
            "verify:\n  " + "\n  ".join(faults)
        )
