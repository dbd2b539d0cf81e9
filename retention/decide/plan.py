"""Deciding records: ``retain``, ``expire``, ``held`` or ``done`` (SPEC §3), and dry-run plans.

:class:`Decider` is the one place a record's fate is decided; the dry run stores and
renders its decisions, enforcement consumes the same decisions batch by batch. The rule is
pushed into the source as a cutoff (``trigger < bound``) and then checked again in Python
for every candidate, so a record is never disposed of before its day even if a source
compared dates wrongly.
"""

from __future__ import annotations

import gc
import json
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from retention.catalog import clock
from retention.catalog.loading import BoundPolicy
from retention.catalog.model import Policy
from retention.catalog.records_plan import Retention
from retention.connectors.base import BatchSize, Condition, Connector, Record, Selection
from retention.decide import problems
from retention.decide.done import certified_action, fingerprint, identity_columns, judge
from retention.decide.fingerprint import decision_columns, record_fingerprint
from retention.decide.holds import Hold, HoldIndex
from retention.decide.identity import Identity
from retention.decide.problems import PARTIAL, Noted
from retention.errors import RetentionError
from retention.evidence.ledger import Ledger, Prior
from retention.pseudonym import Secret, key_json
from retention.state.database import bulk_insert, plan_policies, plan_records, plans, utcnow
from retention.stopping import stop_requested
from retention.workspace import Workspace

Decision = Literal["retain", "expire", "held", "done"]


@dataclass(frozen=True, slots=True)
class Decided:
    record: Record
    ref: str
    key: str
    decision: Decision
    expires_on: date | None
    hold: str | None = None
    secret: bool = False
    """A secret person: reports and certificates show the key and decision only."""
    reason: str | None = None
    """Why a due record is kept (an ``unless`` exception, "in archive")."""

    @property
    def shown_trigger(self) -> date | None:
        return None if self.secret else self.record.trigger

    @property
    def shown_expires_on(self) -> date | None:
        return None if self.secret else self.expires_on

    @property
    def shown_hold(self) -> str | None:
        return None if self.secret else self.hold


@dataclass
class Counts:
    scanned: int = 0
    expire: int = 0
    retain: int = 0
    held: int = 0
    done: int = 0

    def add(self, decision: Decision, n: int = 1) -> None:
        setattr(self, decision, getattr(self, decision) + n)

    def close(self) -> None:
        """Every scanned record not otherwise decided is retained."""
        self.retain = max(0, self.scanned - self.expire - self.held - self.done)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def conditions(policy: Policy) -> tuple[Condition, ...]:
    """The policy's ``unless`` exceptions in the connector's terms."""
    out = []
    for unless in policy.unless:
        if unless.not_empty:
            out.append(Condition(unless.column, "not_empty"))
        elif unless.in_ is not None:
            out.append(Condition(unless.column, "in", unless.in_))
        else:
            out.append(Condition(unless.column, "eq", unless.equals))
    return tuple(out)


def selection_for(
    bound: BoundPolicy, as_of: date, columns: Sequence[str] = (), *, subject: Any = None
) -> Selection | None:
    """The source-side view of a policy on ``as_of``; None when nothing can be due yet.

    With ``subject`` (an erasure request) every record of that person is a candidate,
    due or not.
    """
    policy = bound.policy
    read = (*decision_columns(policy), *columns)
    base = Selection(
        table=policy.location,
        key=policy.key,
        match=policy.match,
        columns=tuple(dict.fromkeys(c for c in read if c)),
        unless=conditions(policy),
    )
    if subject is not None:
        assert policy.subject is not None
        return replace(base, subject=(policy.subject, subject), triggers=policy.trigger,
                       trigger_rule=policy.trigger_rule)  # fmt: skip
    floor = plan_floor(bound)
    if floor is not None and floor.permanent:
        return None  # the plan keeps these for ever: nothing is due to a destroying rule
    if policy.until is not None:
        if _until_unprovable(floor):
            return None
        return None if clock.expires_on_until(policy.until) > as_of else base
    assert policy.retain is not None
    if policy.retain.permanent:
        cutoff: date | None = as_of + timedelta(days=1)  # archived once the trigger has passed
    else:
        assert policy.retain.duration is not None
        cutoff = clock.due_bound(as_of, policy.retain.duration, policy.count_from)
        if floor is not None and cutoff is not None:
            planned = clock.due_bound(as_of, clock.Duration(years=floor.years), policy.count_from)
            cutoff = None if planned is None else min(cutoff, planned)
    if cutoff is None:
        return None
    return replace(base, triggers=policy.trigger, trigger_rule=policy.trigger_rule, bound=cutoff)


def plan_floor(bound: BoundPolicy) -> Retention | None:
    """The retention the records-management plan sets for what a destroying policy disposes
    of: the engine never destroys earlier than the plan allows, whatever the rule says
    (a ``deviation:`` explains a difference, it does not lift this floor). An archiving
    rule hands records to the archive that keeps them, so a permanent plan does not stop it.
    """
    record = bound.plan_record
    policy = bound.policy
    if record is None or not policy.destroys:
        return None
    if record.retention.permanent and policy.action == "archive":
        return None
    return record.retention


def _until_unprovable(floor: Retention | None) -> bool:
    """A fixed last day (``until:``) under a plan period of years counted from each record:
    the rule reads no trigger, so nothing shows the plan's period has passed. Such a rule
    disposes of nothing (``retention check`` reports it as drift) rather than risk
    destroying earlier than the plan allows."""
    return floor is not None and floor.years > 0


def record_expires_on(bound: BoundPolicy, trigger: date | None) -> date | None:
    policy = bound.policy
    floor = plan_floor(bound)
    if floor is not None and floor.permanent:
        return None  # kept for ever by the plan
    if policy.until is not None:
        return None if _until_unprovable(floor) else clock.expires_on_until(policy.until)
    if trigger is None or policy.retain is None:
        return None
    if policy.retain.permanent:
        return trigger
    assert policy.retain.duration is not None
    expires = clock.expires_on(trigger, policy.retain.duration, policy.count_from)
    if floor is not None:
        planned = clock.expires_on(trigger, clock.Duration(years=floor.years), policy.count_from)
        expires = max(expires, planned)
    return expires


class Decider:
    """Decides the records of one policy as of one day, a batch at a time."""

    def __init__(
        self,
        bound: BoundPolicy,
        connector: Connector,
        secret: Secret,
        ledger: Ledger,
        holds: Sequence[Hold],
        as_of: date,
        batch_size: BatchSize,
        columns: Sequence[str] = (),
        *,
        subject: Any = None,
    ) -> None:
        self.bound, self.connector, self.secret, self.ledger = bound, connector, secret, ledger
        self.as_of, self.batch_size = as_of, batch_size
        self.erasure = subject is not None
        self.holds = HoldIndex(holds, bound.register.id, bound.policy.id)
        self.nobody = subject is NO_SUCH_SUBJECT
        versions = connector.capabilities.versions
        self.selection = (
            None
            if self.nobody
            else selection_for(bound, as_of, (*columns, *versions), subject=subject)
        )
        self.selection_unless = conditions(bound.policy)
        self.action = certified_action(bound.policy)
        self.identity = identity_columns(bound.policy, versions)
        self._expiry: dict[date | None, date | None] = {}
        self._all = Selection(
            table=bound.policy.location, key=bound.policy.key, match=bound.policy.match,
            subject=self.selection.subject if self.selection else None,
        )  # fmt: skip

    def scanned(self) -> int:
        """How many records the policy governs (its match filter), due or not."""
        if self.nobody:
            return 0
        return self.connector.count(self._all, candidates_only=False)

    def candidate_count(self) -> int:
        if self.selection is None:
            return 0
        return self.connector.count(self.selection, candidates_only=True)

    def batches(self) -> Iterator[list[Decided]]:
        """Decisions for every candidate; records that are not candidates are ``retain``."""
        if self.selection is None:
            return
        policy = self.bound.policy
        refs_of, connector, table = self.secret.record_refs_of, policy.connector, policy.location
        for page in self.connector.candidates(self.selection, self.batch_size):
            keys = [key_json(r.key) for r in page]
            refs = refs_of(connector, table, keys)
            done = self.ledger.done(self.bound.register.id, policy.id, refs)
            yield self._decide_page(page, refs, keys, done)

    def _decide_page(
        self,
        page: Sequence[Record],
        refs: Sequence[str],
        keys: Sequence[str],
        done: Mapping[str, Sequence[Prior]],
    ) -> list[Decided]:
        """:meth:`_decide` for a page, with its common outcomes taken without the call.

        A record not yet due is ``retain``; a due one without a certificate, with no
        ``unless`` exception to test and no hold in force for the policy, is ``expire``.
        Every other record goes through :meth:`_decide` itself, so there is still one rule.
        """
        policy = self.bound.policy
        expiry, expires_on, decide = self._expiry, self._expires_on, self._decide
        as_of, erasure, marks = self.as_of, self.erasure, policy.secret
        plain = not policy.unless and not self.holds
        out: list[Decided] = []
        append = out.append
        for record, ref, key in zip(page, refs, keys, strict=True):
            trigger = record.trigger
            expires = expiry[trigger] if trigger in expiry else expires_on(trigger)
            secret = bool(marks) and any(is_marked(record.values.get(c)) for c in marks)
            if not erasure and (expires is None or expires > as_of):
                append(Decided(record, ref, key, "retain", expires, None, secret))
            elif plain and ref not in done:
                append(Decided(record, ref, key, "expire", expires, None, secret))
            else:
                append(decide(record, ref, key, done))
        return out

    def decide_one(self, record: Record) -> Decided:
        """The decision for one record read by key, by exactly the rules a run applies."""
        policy = self.bound.policy
        ref = self.secret.record_ref(policy.connector, policy.location, record.key)
        done = self.ledger.done(self.bound.register.id, policy.id, [ref])
        return self._decide(record, ref, key_json(record.key), done)

    def _expires_on(self, trigger: date | None) -> date | None:
        """Calendar arithmetic once per distinct trigger date, not once per record."""
        try:
            return self._expiry[trigger]
        except KeyError:
            expires = self._expiry[trigger] = record_expires_on(self.bound, trigger)
            return expires

    def is_done(self, record: Record, ref: str, done: Mapping[str, Sequence[Prior]]) -> bool:
        """A certificate of this very record (its fingerprint) by today's action exists."""
        priors = done.get(ref)
        if not priors:
            return False
        return judge(priors, self.action,
                     lambda: fingerprint(self.secret, ref, self.identity, record))  # fmt: skip

    def _decide(
        self, record: Record, ref: str, key: str, done: Mapping[str, Sequence[Prior]]
    ) -> Decided:
        policy = self.bound.policy
        expires = self._expires_on(record.trigger)
        secret = any(is_marked(record.values.get(c)) for c in policy.secret)
        if not self.erasure and (expires is None or expires > self.as_of):
            return Decided(record, ref, key, "retain", expires, secret=secret)
        if self.is_done(record, ref, done):
            if policy.action == "archive" and policy.then in (None, "keep"):
                return Decided(record, ref, key, "retain", expires, secret=secret,
                               reason="in archive")  # fmt: skip
            return Decided(record, ref, key, "done", expires, secret=secret)
        decision, reason, hold = what_keeps(
            policy, self.selection_unless, self.holds, self.secret, record, key
        )
        return Decided(record, ref, key, decision, expires, hold, secret, reason)


def what_keeps(
    policy: Policy,
    conditions: Sequence[Condition],
    holds: HoldIndex,
    secret: Secret,
    record: Record,
    key: str,
) -> tuple[Decision, str | None, str | None]:
    """(decision, reason, hold) for a due record without a certificate: ``retain`` for an
    ``unless`` exception it meets, with its reason; ``held`` under a hold in force, with its
    id; else ``expire``. One order, exceptions before holds, for runs, plans and replays.

    Whether a record meets an exception is the source's verdict where it gave one (a
    database compares under its collation), so a record is never judged due here while the
    change the source applies would keep it, or the other way round."""
    kept = record.kept
    for i, (unless, condition) in enumerate(zip(policy.unless, conditions, strict=True)):
        met = kept[i] if kept is not None else condition.holds(record.values.get(unless.column))
        if met:
            return "retain", unless.reason, None
    subject_ref = None
    if holds.needs_subject and policy.subject:
        value = record.values.get(policy.subject)
        subject_ref = secret.subject_ref(value) if value is not None else None
    hold = holds.find(subject_ref, key)
    if hold is not None:
        return "held", None, hold
    return "expire", None, None


#: An erasure subject that cannot be a value of the policy's subject column: no records.
NO_SUCH_SUBJECT = object()


def typed_subject(connector: Connector, bound: BoundPolicy, subject: str | None) -> Any:
    """The subject identifier as the source stores it (a number column wants a number)."""
    if subject is None or bound.policy.subject is None:
        return None
    try:
        (value,) = connector.parse_key(bound.policy.location, [bound.policy.subject], [subject])
    except ValueError:
        return NO_SUCH_SUBJECT  # "010190-900A" is not a number: nobody here has it
    return value


_UNMARKED = frozenset({"", "0", "false", "f", "no", "n", "ei"})


def is_marked(value: object) -> bool:
    """Whether a secret-mark column value says "secret" (1, true, 'x', 'kyllä'...)."""
    return value is not None and str(value).strip().lower() not in _UNMARKED


@dataclass
class PolicyPlan:
    name: str
    register: str
    policy: str
    action: str
    counts: Counts = field(default_factory=Counts)
    status: str = "planned"
    message: str | None = None
    problems: list[Noted] = field(default_factory=list)
    """Records the source would not dispose of, or could not prove gone, by reference."""


@dataclass
class Plan:
    plan_id: str
    as_of: date
    created_at: datetime
    policies: list[PolicyPlan]


#: Kinds of stored plan: one made for a person to approve, a preview made only for its report
#: (scheduled dry runs, hold reports), an erasure request's dry run. Runs store kind ``run``.
FOR_APPROVAL = "dry-run"
PREVIEW = "preview"
ERASURE_PREVIEW = "erasure-dry-run"


def new_id(prefix: str, as_of: date) -> str:
    return f"{prefix}{as_of:%Y%m%d}-{secrets.token_hex(4)}"


def store_plan_header(
    ws: Workspace,
    plan_id: str,
    kind: str,
    as_of: date,
    names: Sequence[str],
    job: str | None,
    made_by: Identity | None = None,
) -> datetime:
    """Store a plan's header; ``made_by`` defaults to the command line's OS account."""
    created = utcnow()
    maker = made_by if made_by is not None else Identity.cli()
    with ws.state.begin() as conn:
        conn.execute(plans.insert().values(
            plan_id=plan_id, kind=kind, created_at=created, as_of=as_of,
            catalog=str(ws.catalog.root), job=job, selection=json.dumps(list(names)),
            made_by=json.dumps(maker.as_dict(), sort_keys=True),
        ))  # fmt: skip
    return created


def store_policy_plan(
    ws: Workspace, plan_id: str, position: int, bound: BoundPolicy, result: PolicyPlan
) -> None:
    with ws.state.begin() as conn:
        conn.execute(plan_policies.insert().values(
            plan_id=plan_id, register=bound.register.id, policy=bound.policy.id,
            position=position, action=bound.policy.action,
            policy_sha256=bound.policy.fingerprint(), legal_basis=bound.policy.legal_basis,
            rule=bound.policy.describe_rule(), status=result.status,
            counts=json.dumps(result.counts.as_dict()), message=result.message,
        ))  # fmt: skip


def make_plan(
    ws: Workspace,
    policies: Sequence[BoundPolicy],
    as_of: date,
    job: str | None = None,
    *,
    subject: str | None = None,
    for_approval: bool = True,
    made_by: Identity | None = None,
) -> Plan:
    """Dry run: decide every record of ``policies``, store the plan, change no source.

    With ``subject``, the dry run of an erasure request: every record of that person. Without
    ``for_approval`` the plan is a preview (a scheduled dry run's report, a hold report): stored
    so its report can be written, but never offered for approval. ``made_by``: who made it
    (default: the OS account, unauthenticated); that person cannot approve it.
    """
    _ = ws.secret  # refuse before storing anything: record references need it
    plan_id = new_id("P", as_of)
    kind = FOR_APPROVAL if for_approval else PREVIEW
    if subject is not None:
        kind = ERASURE_PREVIEW
    created = store_plan_header(ws, plan_id, kind, as_of, [p.name for p in policies], job, made_by)
    active = ws.holds.active(as_of)
    results: list[PolicyPlan] = []
    for position, bound in enumerate(policies):
        result = PolicyPlan(bound.name, bound.register.id, bound.policy.id, bound.policy.action)
        if not bound.policy.enabled:
            result.status, result.message = "skipped", "policy is disabled (enabled: false)"
        elif stop_requested():
            result.status, result.message = "interrupted", "not reached: the plan was stopped"
        else:
            try:
                _plan_policy(ws, plan_id, bound, as_of, active, result, subject)
            except RetentionError as exc:
                result.status, result.message = "failed", str(exc)
            except (OverflowError, ValueError) as exc:  # the blast radius is this policy
                result.status, result.message = "failed", arithmetic_failure(exc)
            else:
                if result.problems:
                    result.status, result.message = PARTIAL, problems.summary(result.problems)
        store_policy_plan(ws, plan_id, position, bound, result)
        results.append(result)
    _analyse_large_plan(ws, sum(r.counts.expire + r.counts.held for r in results))
    return Plan(plan_id, as_of, created, results)


#: Stored records after which a plan has PostgreSQL's statistics of its records refreshed.
ANALYSE_AFTER = 10_000


def _analyse_large_plan(ws: Workspace, stored: int) -> None:
    """After storing a large plan, refresh PostgreSQL's statistics of ``plan_records``: until
    autovacuum gets to it the planner believes the table as small as it last saw it (empty,
    after ``init``) and reads every record of the plan for each batch ``run --plan`` looks up
    (138 ms a batch against 28 at 300k records), instead of using the reference index. A
    state database user who does not own the table gets a warning from the server, and the
    plan stands."""
    if stored < ANALYSE_AFTER or ws.state.dialect.name != "postgresql":
        return
    with ws.state.begin() as conn:
        conn.exec_driver_sql("ANALYZE plan_records")


def arithmetic_failure(exc: Exception) -> str:
    """What a policy whose date arithmetic failed reports: the kind of failure only, as the
    text of a ValueError can quote a record's value."""
    return (
        f"date arithmetic failed ({type(exc).__name__}): a date beyond the calendar in this "
        "policy's rule or records; nothing more of this policy was done, the others went on"
    )


@contextmanager
def collector_paused() -> Iterator[Callable[[], object]]:
    """Pause Python's cyclic garbage collector while pages of records stream through; call
    the function it gives once per page.

    A page makes tens of thousands of short-lived objects (records, decisions, rows) that
    reference counting frees, yet each page outlives enough allocations to be traversed by
    the collector again and again: a fifth of a plan's time. The function collects only the
    young objects made since the last page, so the few cycles a page makes (a compiled
    statement holding its parameters) are freed and memory stays flat. The collector is back
    on afterwards; one already off is left off.
    """
    if not gc.isenabled():
        yield _nothing
        return
    gc.disable()
    try:
        yield _collect_young
    finally:
        gc.enable()


def _collect_young() -> object:
    return gc.collect(0)


def _nothing() -> object:
    return None


def _plan_policy(
    ws: Workspace,
    plan_id: str,
    bound: BoundPolicy,
    as_of: date,
    active: Sequence[Hold],
    result: PolicyPlan,
    subject: str | None = None,
) -> None:
    connector = ws.connector(bound.policy.connector)
    connector.problems()  # what earlier reads found belongs to them, not to this policy
    decider = Decider(
        bound, connector, ws.secret, ws.ledger, active, as_of, ws.catalog.settings.largest_batch,
        subject=typed_subject(connector, bound, subject),
    )  # fmt: skip
    result.counts.scanned = decider.scanned()
    counts = result.counts
    try:
        with collector_paused() as page_done:
            _store_decisions(ws, plan_id, bound, decider, counts, page_done)
        result.counts.close()
    finally:
        problems.collect(ws.secret, connector, bound.policy.connector, bound.policy.location,
                         result.problems, bound.name)  # fmt: skip


def _store_decisions(
    ws: Workspace,
    plan_id: str,
    bound: BoundPolicy,
    decider: Decider,
    counts: Counts,
    page_done: Callable[[], object],
) -> None:
    """Count every decision and store the listed ones, a page at a time."""
    fingerprinted = decision_columns(bound.policy)
    secret, register, policy = ws.secret, bound.register.id, bound.policy.id
    for batch in decider.batches():
        tally = dict.fromkeys(_DECISIONS, 0)
        rows = []
        for decided in batch:
            decision = decided.decision
            tally[decision] += 1
            if decision in _LISTED or decided.reason not in (None, "in archive"):
                record = decided.record
                rows.append({
                    "plan_id": plan_id, "register": register, "policy": policy,
                    "key": decided.key, "record_ref": decided.ref, "decision": decision,
                    "trigger_date": record.trigger, "expires_on": decided.expires_on,
                    "hold_id": decided.hold, "reason": decided.reason, "secret": decided.secret,
                    "fingerprint": record_fingerprint(secret, fingerprinted, record),
                })  # fmt: skip
        for decision, n in tally.items():
            counts.add(decision, n)
        if rows:
            with ws.state.begin() as conn:
                bulk_insert(conn, plan_records, rows)
        page_done()


_DECISIONS: tuple[Decision, ...] = ("expire", "retain", "held", "done")
_LISTED = frozenset({"expire", "held"})


def load_plan(
    ws: Workspace, plan_id: str
) -> tuple[sa.Row[tuple[object, ...]], list[sa.Row[tuple[object, ...]]]]:
    """A stored plan's header and per-policy rows."""
    with ws.state.connect() as conn:
        header = conn.execute(sa.select(plans).where(plans.c.plan_id == plan_id)).first()
        if header is None:
            from retention.errors import UsageError

            raise UsageError(f"no plan {plan_id!r} in the state database")
        rows = conn.execute(
            sa.select(plan_policies)
            .where(plan_policies.c.plan_id == plan_id)
            .order_by(plan_policies.c.position)
        ).all()
    return header, list(rows)
