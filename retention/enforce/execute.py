"""Enforcement: apply each policy's action to its due records and certify every one.

For each batch of decisions the order is fixed, so that no crash can leave a record
disposed of without a certificate, or a certificate for a disposal that did not happen:

1. write an *intent* per record to the state database (a row per up to 1,000 of them)
   and commit it;
2. apply the change in one source transaction, whose WHERE clause re-checks that every
   record is still due and still matches (``… RETURNING`` where the database can name the
   rows it changed);
3. re-read from the source the records the database did not report;
4. in one state transaction, append a certificate for each record the report or the
   re-read shows disposed of, and delete the batch's intents — except those of records the
   re-read could not tell present or gone (a share folder swapped for a link), which stay.
   The same transaction writes the next batch's intents (its step 1), so a batch costs two
   commits; batches are sized by the time their step 2 takes (:mod:`.pacing`).

A record the connector refused or failed to dispose of (a hard link, permission denied) is a
problem on that record: no certificate, the policy goes on and ends ``partial`` (exit 4).

A run begins by reconciling intents left by a run that died between 1 and 4: each record
is re-read, certified if it is disposed of, and its intent dropped either way — unless the
re-read cannot tell, in which case the intent waits for a later run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
import structlog

from retention import events
from retention.catalog.loading import BoundPolicy
from retention.catalog.model import Policy
from retention.connectors.base import (
    Change,
    Condition,
    Connector,
    Delete,
    Key,
    RecordProblem,
    Selection,
)
from retention.decide import problems
from retention.decide.approval import ApprovedPlan
from retention.decide.done import fingerprint, identity_columns
from retention.decide.holds import Hold, HoldIndex
from retention.decide.plan import (
    Counts,
    Decided,
    Decider,
    PolicyPlan,
    arithmetic_failure,
    collector_paused,
    new_id,
    store_plan_header,
    store_policy_plan,
    typed_subject,
)
from retention.decide.problems import PARTIAL, Noted
from retention.enforce.anonymise import Anonymiser
from retention.enforce.archive import Package, PackageWriter
from retention.enforce.locks import RunLock
from retention.enforce.pacing import Pacer
from retention.errors import (
    EXIT_PARTIAL,
    EXIT_SAFETY_VALVE,
    EXIT_SUCCESS,
    DueShareTripped,
    LedgerError,
    RetentionError,
    SafetyValveTripped,
    UsageError,
)
from retention.evidence import keyring
from retention.evidence.certificate import ACTION_DONE, canonical, new_certificate_id
from retention.evidence.ledger import ForeignCertificates, Ledger, sign_run_start
from retention.logs import get_logger
from retention.pseudonym import key_json
from retention.state.database import INTENTS_PER_ROW, intent_batches, intents, runs, utcnow
from retention.stopping import stop_requested
from retention.workspace import Workspace


@dataclass
class PolicyOutcome(PolicyPlan):
    archived: str | None = None
    """The archive package this run wrote for the policy."""
    disposed: int = 0
    unchanged: int = 0
    """Due records the source did not change because they changed since they were read."""
    changed: int = 0
    """Executing an approved plan: planned records skipped because they changed since."""
    unplanned: int = 0
    """Executing an approved plan: due records it did not list, left for the next plan."""
    held_in_plan: int = 0
    """Executing an approved plan: due records it lists as held (excluded from it, or held
    when it was made) whose hold was released since: kept, left for the next plan."""


@dataclass
class RunOutcome:
    run_id: str
    plan_id: str
    as_of: date
    policies: list[PolicyOutcome] = field(default_factory=list)
    reconciled: int = 0
    reconciled_by_policy: dict[str, int] = field(default_factory=dict)
    """Certificates this run made for intents an earlier run left, by policy name."""
    checkpoint: dict[str, Any] | None = None

    @property
    def disposed(self) -> int:
        return sum(p.disposed for p in self.policies)

    @property
    def exit_code(self) -> int:
        statuses = {p.status for p in self.policies}
        if statuses & {"failed", "interrupted", PARTIAL}:
            return EXIT_PARTIAL
        if "stopped" in statuses:
            return EXIT_SAFETY_VALVE
        return EXIT_SUCCESS

    @property
    def status(self) -> str:
        return {EXIT_SUCCESS: "completed", EXIT_SAFETY_VALVE: "stopped"}.get(
            self.exit_code, "partial"
        )


def enforce(
    ws: Workspace,
    policies: Sequence[BoundPolicy],
    as_of: date,
    job: str | None = None,
    *,
    subject: str | None = None,
    override: Override | None = None,
    approved: ApprovedPlan | None = None,
) -> RunOutcome:
    """Run ``policies`` for real as of ``as_of`` and close the run with a signed checkpoint.

    With ``subject``, an erasure request: that person's records are disposed of now, due or
    not, and their certificates say so. With ``override``, the records to dispose of are
    decided by it (a replay after a restore) instead of by the schedule. With ``approved``,
    only that plan's records that are still due and unchanged since it was made; the plan is
    marked executed before anything.
    """
    refuse_future(ws, as_of, job)
    secret, key = ws.secret, ws.signing_key()  # refuse before touching anything
    del secret
    keyring.require_current(ws.state, key)  # LedgerError: not the pinned key; nothing done
    names = [f"job:{job}"] if job else []
    lease = timedelta(seconds=ws.catalog.settings.lock_lease_seconds)
    lock = RunLock(ws.state, [*names, *(f"policy:{p.name}" for p in policies)], lease)
    lock.acquire()  # RunLocked: another live run has one of them; nothing done
    run_id = new_id("R", as_of)
    structlog.contextvars.bind_contextvars(run_id=run_id)
    try:
        if approved is not None:
            approved.claim(ws, run_id)  # UsageError: another run executed it; nothing done
        plan_id = new_id("P", as_of)
        store_plan_header(ws, plan_id, "run", as_of, [p.name for p in policies], job)
        with ws.state.begin() as conn:
            conn.execute(
                runs.insert().values(
                    run_id=run_id,
                    plan_id=plan_id,
                    job=job,
                    started_at=utcnow(),
                    status="running",
                    signature=sign_run_start(key, run_id, plan_id),
                )
            )
        outcome = RunOutcome(run_id, plan_id, as_of)
        run = _Run(ws, run_id, plan_id, as_of, subject, lock, override, approved)
        events.emit(events.RunStarted(run_id, plan_id, as_of.isoformat(), len(policies)))
        unsettled: dict[tuple[str, str], list[Noted]] = {}
        outcome.reconciled = reconcile(
            ws, run_id, policies, unsettled=unsettled, counts=outcome.reconciled_by_policy
        )
        for position, bound in enumerate(policies):
            active = ws.holds.active(as_of)  # read per policy: a hold placed now counts
            result = PolicyOutcome(
                bound.name, bound.register.id, bound.policy.id, bound.policy.action
            )
            result.problems.extend(unsettled.get((bound.register.id, bound.policy.id), []))
            if stop_requested():
                result.status, result.message = "interrupted", "not reached: the run was stopped"
            else:
                _run_policy(run, bound, active, result)
            store_policy_plan(ws, plan_id, position, bound, result)
            outcome.policies.append(result)
            c = result.counts
            events.emit(
                events.PolicyFinished(
                    bound.name,
                    result.status,
                    c.scanned,
                    c.expire,
                    c.retain,
                    c.held,
                    c.done,
                    result.disposed,
                    result.message,
                )
            )
        try:
            outcome.checkpoint = ws.ledger.checkpoint(run_id, key)
        except ForeignCertificates:
            # Certificates no run accounts for: the run ends failed and unsigned, loudly.
            # (Any other refusal leaves the run unfinished, as a crash would, so the next
            # run may still sign its certificates.)
            with ws.state.begin() as conn:
                conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(
                    finished_at=utcnow(), status="failed", exit_code=LedgerError.exit_code,
                    summary=json.dumps(_summary(outcome, approved)),
                ))  # fmt: skip
            raise
        if outcome.checkpoint is not None:
            events.emit(
                events.CheckpointSigned(
                    run_id, outcome.checkpoint["last_seq"], outcome.checkpoint["count"]
                )
            )
        with ws.state.begin() as conn:
            conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(
                finished_at=utcnow(), status=outcome.status, exit_code=outcome.exit_code,
                summary=json.dumps(_summary(outcome, approved)),
            ))  # fmt: skip
        events.emit(events.RunFinished(run_id, outcome.status, outcome.exit_code, outcome.disposed))
        return outcome
    finally:
        lock.release()
        structlog.contextvars.unbind_contextvars("run_id")


def refuse_future(ws: Workspace, as_of: date, job: str | None = None) -> None:
    """A run disposes of records as of today or an earlier day, never ahead of time.

    Every path that disposes of records (run, approved plan, review, erasure, replay,
    scheduler) passes :func:`enforce`, which asks this first. Today is the catalog's local
    day, or the job's where its zone is behind (:meth:`Catalog.today`). Plans and forecasts
    may look ahead; they dispose of nothing.
    """
    today, zone = ws.catalog.today(job)
    if as_of > today:
        raise UsageError(
            f"--as-of {as_of} is after today ({today} in {zone}): a run disposes of records "
            "as of today or an earlier day, never ahead of their time; nothing was done. To "
            "look ahead, use `retention plan --as-of` or `retention forecast`"
        )


def _summary(outcome: RunOutcome, approved: ApprovedPlan | None) -> dict[str, Any]:
    """What ``runs.summary`` records per policy: verify checks ``disposed`` plus ``reconciled``
    (certificates for intents an earlier run left) against the run's certificates."""
    reconciled = outcome.reconciled_by_policy
    return {
        p.name: {"status": p.status, "disposed": p.disposed, **p.counts.as_dict(),
                 **({"changed": p.changed, "unplanned": p.unplanned,
                     "held_in_plan": p.held_in_plan} if approved else {}),
                 **({"reconciled": reconciled[p.name]} if p.name in reconciled else {})}
        for p in outcome.policies
    }  # fmt: skip


@dataclass(frozen=True)
class _Run:
    """What every policy of one run shares."""

    ws: Workspace
    run_id: str
    plan_id: str
    as_of: date
    subject: str | None = None
    """An erasure request's subject: that person's records, due or not."""
    lock: RunLock | None = None
    override: Override | None = None
    approved: ApprovedPlan | None = None


def _run_policy(
    run: _Run, bound: BoundPolicy, active: Sequence[Hold], result: PolicyOutcome
) -> None:
    if not bound.policy.enabled:
        result.status, result.message = "skipped", "policy is disabled (enabled: false)"
        return
    try:
        _PolicyRun(run, bound, active, result).execute()
    except SafetyValveTripped as exc:
        result.status, result.message = "stopped", str(exc)
    except _Interrupted:
        result.status = "interrupted"
        result.message = "stopped between batches on request; the rest waits for the next run"
    except RetentionError as exc:  # SourceUnavailable, ArchiveFailed, ...
        result.status, result.message = "failed", str(exc)
    except (OverflowError, ValueError) as exc:  # the blast radius is this policy
        result.status, result.message = "failed", arithmetic_failure(exc)
    else:
        result.status = "review" if bound.policy.action == "review" else "completed"
        if result.problems:  # the policy went on past them; the run exits 4
            result.status, result.message = PARTIAL, problems.summary(result.problems)


_log = get_logger("retention")


class _Interrupted(Exception):
    """A stop was requested; the batch in hand is finished and certified."""


class Decisions(Protocol):
    """What a policy run disposes of, a batch at a time: a :class:`Decider`'s decisions,
    or those of an :class:`Override`."""

    @property
    def selection(self) -> Selection | None: ...
    @property
    def as_of(self) -> date: ...
    def scanned(self) -> int: ...
    def candidate_count(self) -> int: ...
    def batches(self) -> Iterator[list[Decided]]: ...


class Override(Protocol):
    """Decisions made by something other than the schedule (a replay after a restore),
    disposed of through the same intent → change → re-read → certificate pipeline."""

    reason: str
    """The ``reason`` its certificates give."""

    def decisions(self, bound: BoundPolicy, holds: Sequence[Hold]) -> Decisions: ...

    def certificate_fields(self, decided: Decided) -> Mapping[str, Any]:
        """Fields the certificate of ``decided`` carries beyond the usual ones."""
        ...


class _PolicyRun:
    """One policy in one run: decide, (archive,) dispose, certify."""

    def __init__(
        self, run: _Run, bound: BoundPolicy, active: Sequence[Hold], result: PolicyOutcome
    ) -> None:
        ws, subject, override = run.ws, run.subject, run.override
        self.ws, self.run_id, self.plan_id, self.lock = ws, run.run_id, run.plan_id, run.lock
        self.approved = run.approved
        self.bound, self.policy, self.result = bound, bound.policy, result
        self.override = override
        self._common: dict[str, Any] | None = None
        self.reason = "retention" if subject is None else "erasure-request"
        if override is not None:
            self.reason = override.reason
        self.erasure = subject is not None
        # An erasure's certificates name the person by keyed reference, so that a proof of
        # their erasure can be found by it (`retention certificates prove --subject`).
        self.subject_ref = ws.secret.subject_ref(subject) if subject is not None else None
        self.connector = ws.connector(self.policy.connector)
        attachments = self.policy.attachments
        self.share = ws.connector(attachments.connector) if attachments else None
        for reader in (self.connector, self.share):
            if reader is not None:
                reader.problems()  # what earlier reads found belongs to them, not to this run
        self.destroy = destroying_step(self.policy)
        # What a certificate's fingerprint covers; the decisions read these columns.
        self.identity = identity_columns(self.policy, self.connector.capabilities.versions)
        self.anonymiser = (
            Anonymiser(self.policy.anonymise, ws.secret) if self.destroy == "anonymise" else None
        )
        columns = self.anonymiser.per_record_columns if self.anonymiser else ()
        self.pacer = Pacer.for_settings(ws.catalog.settings)
        self.decider: Decisions = Decider(
            bound, self.connector, ws.secret, ws.ledger, active, run.as_of,
            self.pacer, columns,
            subject=typed_subject(self.connector, bound, subject),
        ) if override is None else override.decisions(bound, active)  # fmt: skip

    def execute(self) -> None:
        counts = self.result.counts
        counts.scanned = self.decider.scanned()
        candidates = self._check_valve()
        events.emit(events.PolicyStarted(self.bound.name, candidates))
        try:
            if self.policy.action == "archive" and not self.erasure and self.override is None:
                self._archive()
                return
            with collector_paused() as batch_done:
                self._each_batch(batch_done)
            counts.close()
        finally:
            self._problems()

    def _problems(self) -> dict[str, RecordProblem]:
        """Take the problems the connectors met since the last call (listing, deleting,
        re-reading), report them by reference; return the policy's own by key text."""
        policy, into = self.policy, self.result.problems
        found = problems.collect(self.ws.secret, self.connector, policy.connector,
                                 policy.location, into, self.bound.name)  # fmt: skip
        attachments = self.policy.attachments
        if self.share is not None and attachments is not None:
            problems.collect(self.ws.secret, self.share, attachments.connector,
                             SHARE_WIDE.table, into, self.bound.name)  # fmt: skip
        return found

    def _each_batch(self, batch_done: Callable[[], object]) -> None:
        """Dispose of the policy's due records batch by batch, two commits a batch.

        A changed batch is certified in the state transaction that also writes the next
        batch's intents, so the next batch is read and decided before the one in hand is
        certified. Whatever ends the loop — the last page, a stop, the safety valve, an
        error while reading — the batch in hand is certified first."""
        counts = self.result.counts
        limit = self.policy.max_per_run
        carried: _Changed | None = None
        try:
            for batch in self.decider.batches():
                for decided in batch:
                    counts.add(decided.decision)
                due = self._approved_only([d for d in batch if d.decision == "expire"])
                if due and self.destroy is not None and self.policy.action != "review":
                    in_hand = len(carried.disposed) if carried is not None else 0
                    if limit is not None and self.result.disposed + in_hand + len(due) > limit:
                        # More fell due while the run went on than its first count showed.
                        self._certify(carried)
                        carried = None
                        self._dispose(due[: max(0, limit - self.result.disposed)])
                        counts.close()
                        raise SafetyValveTripped(self.bound.name, counts.expire, limit)
                    prepared = self._prepare(due)
                    self._certify(carried, prepared)
                    carried = None
                    if prepared is not None:
                        carried = self._change(prepared)
                    if stop_requested():
                        self._certify(carried)
                        carried = None
                        counts.close()
                        raise _Interrupted
                else:
                    self._certify(carried)
                    carried = None
                    if self.lock is not None:
                        self.lock.refresh()  # a long scan is a sign of life too
                batch_done()
            self._certify(carried)
            carried = None
        except BaseException:
            if carried is not None:  # changed and proven: certify it before giving up
                try:
                    self._certify(carried)
                except (RetentionError, sa.exc.SQLAlchemyError, OSError) as exc:
                    # The intents stay: the next run reconciles them.
                    _log.warning(
                        "IntentsKept", policy=self.bound.name,
                        intents=len(carried.batch.due), reason=type(exc).__name__,
                    )  # fmt: skip
            raise

    def _check_valve(self) -> int:
        """Refuse, changing nothing, when more is due than the policy may take in one run:
        more than ``max_per_run`` records, or a larger share of the table than
        ``max_due_share`` (a broken trigger column or a clock set to 2099 looks like that)."""
        limit = self.policy.max_per_run
        share = self.policy.max_due_share
        if share is None:
            share = self.ws.catalog.settings.max_due_share
        if self.destroy is None or self.erasure:
            share = None  # nothing destroyed, or one person's records: no share to guard
        scanned = self.result.counts.scanned
        candidates = self.decider.candidate_count()
        over_limit = limit is not None and candidates > limit
        over_share = share is not None and scanned > 0 and candidates > share * scanned
        if not (over_limit or over_share):
            return candidates
        counts = self.result.counts
        for batch in self.decider.batches():
            for decided in batch:
                counts.add(decided.decision)
        if limit is not None and counts.expire > limit:
            counts.close()  # the report shows what was found, though nothing was done
            raise SafetyValveTripped(self.bound.name, counts.expire, limit)
        if share is not None and scanned and counts.expire > share * scanned:
            counts.close()
            raise DueShareTripped(self.bound.name, counts.expire, scanned, share)
        self.result.counts = Counts(scanned=counts.scanned)
        return candidates

    def _archive(self) -> None:
        """Package every due record, validate the package, then run the ``then`` step."""
        selection = self.decider.selection
        counts = self.result.counts
        root = self.ws.catalog.resolve(self.ws.catalog.settings.archive)
        writer = PackageWriter(root, self.bound, self.run_id)
        archived: list[Decided] = []
        columns: list[str] | None = None
        try:
            for batch in self.decider.batches():
                for decided in batch:
                    counts.add(decided.decision)
                if self.lock is not None:
                    self.lock.refresh()
                due = self._approved_only([d for d in batch if d.decision == "expire"])
                if not due or selection is None:
                    continue
                keys = [d.record.key for d in due]
                if columns is None:  # reflected once, when the first due record appears
                    columns = list(self.connector.describe(self.policy.location).columns)
                values = self.connector.reread(selection, keys, columns)
                files = self.connector.files(selection, keys)
                for d in due:
                    if d.record.key not in values:
                        continue  # gone since it was read: nothing to archive
                    attached = files.get(d.record.key, []) + self._attached_files(d)
                    writer.add(d.ref, json.loads(d.key), values[d.record.key], attached)
                    archived.append(d)
            counts.close()
            if not archived:
                writer.discard()
                return
            package = writer.seal()
        except BaseException:
            writer.discard()
            raise
        self.result.archived = package.name
        events.emit(events.PackageSealed(self.bound.name, package.name, package.records))
        size = self.ws.catalog.settings.batch_size
        for start in range(0, len(archived), size):
            chunk = archived[start : start + size]
            if self.destroy is None:
                self._certify_archived(chunk, package)
            else:
                self._dispose(chunk, package)

    def _certify_archived(self, chunk: list[Decided], package: Package) -> None:
        executed_at = utcnow().isoformat()
        with self.ws.state.begin() as conn:
            Ledger.append(conn, [
                {**self._body(d, package), "executed_at": executed_at, "verified": True}
                for d in chunk
            ])  # fmt: skip
        self.result.disposed += len(chunk)

    def _dispose(self, due: list[Decided], package: Package | None = None) -> None:
        """One batch on its own: intents, change, certificates (three commits)."""
        prepared = self._prepare(due, package)
        if prepared is None:
            return
        self._certify(None, prepared)
        self._certify(self._change(prepared))

    def _prepare(self, due: list[Decided], package: Package | None = None) -> _Batch | None:
        """The batch's records still to dispose of (a hold placed since counts) and the
        intents to write for them; None when none is left."""
        due = _in_key_order(self._not_held_now(due))
        if not due:
            if self.lock is not None:
                self.lock.refresh()  # every batch held: still a sign of life
            return None
        if self.share is not None:  # an unsafe path stops the policy before anything changes
            self.share.files(SHARE_WIDE, [(p,) for d in due for p in self._attached(d)])
        own = {d.ref: self._own(d, package) for d in due}
        entries = [
            {"record_ref": d.ref, "key": d.key, "certificate": own[d.ref],
             "attachments": self._attached(d) if self.share else None}
            for d in due
        ]  # fmt: skip
        return _Batch(due, own, entries)

    def _certify(self, changed: _Changed | None, following: _Batch | None = None) -> None:
        """One state transaction: the certificates of ``changed`` (a batch the source
        changed and the engine verified) and the drop of its intents, and the intents of
        ``following``, which is changed only after this commits."""
        if changed is None and following is None:
            return
        common = self._common_fields()
        with self.ws.state.begin() as conn:
            if following is not None and self.lock is not None:
                self.lock.refresh(conn)  # still ours, checked where the batch is committed to
            if changed is not None:
                batch = changed.batch
                reread, remaining = self.connector.capabilities.reread, changed.remaining
                Ledger.append(conn, (
                    {**common, **batch.own[d.ref], "executed_at": changed.executed_at,
                     "verified": reread and not (remaining and remaining & set(self._attached(d)))}
                    for d in changed.disposed
                ))  # fmt: skip
                conn.execute(
                    sa.delete(intent_batches).where(intent_batches.c.id.in_(batch.written))
                )
                if changed.unknown:  # not provably gone nor there: a later reconcile will tell
                    write_intents(conn, self.run_id, self.plan_id, self.bound.register.id,
                                  self.policy.id, self._recheck(),
                                  [e for e in batch.entries if e["key"] in changed.unknown],
                                  common)  # fmt: skip
            if following is not None:
                following.written = write_intents(
                    conn,
                    self.run_id,
                    self.plan_id,
                    self.bound.register.id,
                    self.policy.id,
                    self._recheck(),
                    following.entries,
                    common,
                )
        if changed is not None:
            due, disposed = changed.batch.due, changed.disposed
            unchanged = len(due) - len(disposed) - changed.refused
            self.result.disposed += len(disposed)
            self.result.unchanged += unchanged
            events.emit(events.BatchCommitted(self.bound.name, len(due), len(disposed), unchanged))

    def _change(self, batch: _Batch) -> _Changed:
        """Apply the change to a batch whose intents are committed, and prove what changed."""
        selection = self.decider.selection
        assert selection is not None
        due = batch.due
        keys = [d.record.key for d in due]
        change: Change = (
            Delete() if self.anonymiser is None else self.anonymiser.change([d.record for d in due])
        )
        columns = self._reread_columns()
        with self.pacer.timing() as took:
            reported = self.connector.apply_reported(selection, keys, change, columns)
        self.pacer.took(len(keys), took.seconds)
        # The database's own report of what it changed is the evidence for those records
        # (deleted: gone; anonymised: their values as written); the rest, or all where it
        # cannot report, are re-read.
        unreported = keys if reported is None else [k for k in keys if k not in reported]
        evidence = replace(selection, subject=None)  # an erased subject may be pseudonymised
        after: dict[Key, Mapping[str, Any]] = {}
        if unreported:
            after = self.connector.reread(
                evidence, unreported, columns, selected_only=self.anonymiser is not None
            )
        if reported and self.anonymiser is not None:
            after.update(reported)
        executed_at = utcnow().isoformat()
        troubled = self._problems()
        verdicts = _disposed_keys(keys, after, self.anonymiser)
        disposed = [
            d for d, gone in zip(due, verdicts, strict=True)
            if gone and _certifiable(troubled.get(d.key))
        ]  # fmt: skip
        unknown = {d.key for d in due if _effect(troubled.get(d.key)) == "unknown"}
        certified = {d.key for d in disposed}
        refused = sum(1 for d in due if d.key in troubled and d.key not in certified)
        remaining: set[str] = set()
        if self.share is not None:
            remaining = self._remove_unshared(disposed)
            self._problems()
        return _Changed(batch, disposed, unknown, refused, remaining, executed_at)

    def _approved_only(self, due: list[Decided]) -> list[Decided]:
        """Executing an approved plan: only its records, unchanged since it was made."""
        if self.approved is None or not due:
            return due
        admitted = self.approved.admit(self.ws, self.bound, due)
        self.result.changed += admitted.changed
        self.result.unplanned += admitted.unplanned
        self.result.held_in_plan += admitted.held
        return admitted.kept

    def _not_held_now(self, due: list[Decided]) -> list[Decided]:
        """Drop records a hold placed since the run began now covers: holds always win."""
        index = HoldIndex(self.ws.holds.active(self.decider.as_of), self.bound.register.id,
                          self.policy.id)  # fmt: skip
        kept: list[Decided] = []
        column = self.policy.subject if index.needs_subject else None
        for d in due:
            subject = d.record.values.get(column) if column is not None else None
            ref = self.ws.secret.subject_ref(subject) if subject is not None else None
            if index.find(ref, d.key) is None:
                kept.append(d)
            else:
                self.result.counts.expire -= 1
                self.result.counts.held += 1
        return kept

    def _remove_unshared(self, disposed: list[Decided]) -> set[str]:
        """Delete the disposed rows' files that no remaining row points at; return those left."""
        assert self.share is not None and self.policy.attachments is not None
        column = self.policy.attachments.column
        table = self.policy.location
        paths = sorted({p for d in disposed for p in self._attached(d)})
        shared = {
            p for p in paths
            if self.connector.count(Selection(table=table, key=self.policy.key,
                                              match={column: p}), candidates_only=False)
        }  # fmt: skip
        return shared | remove_attachments(self.share, [p for p in paths if p not in shared])

    def _attached(self, decided: Decided) -> list[str]:
        """The relative paths of the files a row points at (none when the column is empty)."""
        if self.policy.attachments is None:
            return []
        value = decided.record.values.get(self.policy.attachments.column)
        return [str(value)] if value not in (None, "") else []

    def _attached_files(self, decided: Decided) -> list[Path]:
        paths = self._attached(decided)
        if self.share is None or not paths:
            return []
        found = self.share.files(SHARE_WIDE, [(p,) for p in paths])
        return [f for p in paths for f in found.get((p,), [])]

    def _reread_columns(self) -> list[str]:
        return self.anonymiser.fields if self.anonymiser else []

    def _recheck(self) -> dict[str, Any]:
        """What a later run needs to re-read these records exactly as this one verifies them."""
        selection = self.decider.selection
        assert selection is not None
        return {
            "connector": self.policy.connector,
            "table": self.policy.location,
            "key": list(self.policy.key),
            "anonymise": dict(self.anonymiser.strategies) if self.anonymiser else {},
            "share": self.policy.attachments.connector if self.policy.attachments else None,
            "match": {k: _listed(v) for k, v in selection.match.items()},
            "triggers": list(selection.triggers),
            "trigger_rule": selection.trigger_rule,
            "bound": selection.bound.isoformat() if selection.bound else None,
            "unless": [[c.column, c.op, _listed(c.value)] for c in selection.unless],
        }  # fmt: skip

    def _body(self, decided: Decided, package: Package | None = None) -> dict[str, Any]:
        return {**self._common_fields(), **self._own(decided, package)}

    def _common_fields(self) -> dict[str, Any]:
        """What every certificate of this policy's run shares (made once)."""
        if self._common is None:
            self._common = {
                "run_id": self.run_id,
                "plan_id": self.approved.plan_id if self.approved else self.plan_id,
                "approved_by": self.approved.approved_by if self.approved else None,
                **({"approvals": list(self.approved.approvals)} if self.approved else {}),
                "register": self.bound.register.id,
                "policy": self.policy.id,
                "policy_sha256": self.policy.fingerprint(),
                "action": ACTION_DONE[self.destroy or self.policy.action],
                "reason": self.reason,
                "fields": self.anonymiser.fields if self.anonymiser else [],
                "legal_basis": self.policy.legal_basis,
                **({"subject_ref": self.subject_ref} if self.subject_ref else {}),
            }
            cited = records_plan_citation(self.policy)
            if cited is not None:  # the plan decision that allowed the disposal
                self._common["records_plan"] = cited
        return self._common

    def _own(self, decided: Decided, package: Package | None = None) -> dict[str, Any]:
        """The fields of one record's certificate beyond :meth:`_common_fields`."""
        return {
            "certificate_id": new_certificate_id(),
            "record_ref": decided.ref,
            "fingerprint": fingerprint(self.ws.secret, decided.ref, self.identity, decided.record),
            "archive": package.evidence() if package else None,
            "trigger_date": _iso(decided.shown_trigger),
            "expires_on": _iso(decided.shown_expires_on),
            **(self.override.certificate_fields(decided) if self.override else {}),
        }


@dataclass
class _Batch:
    """Due records about to be disposed of, with their intents."""

    due: list[Decided]
    own: dict[str, dict[str, Any]]
    """Each record's own certificate fields, by reference."""
    entries: list[dict[str, Any]]
    """The intents, one per record."""
    written: list[int] = field(default_factory=list)
    """The intent rows, once committed."""


@dataclass(frozen=True)
class _Changed:
    """A batch the source changed, with what the engine proved of each record."""

    batch: _Batch
    disposed: list[Decided]
    """Proven disposed of: these get certificates."""
    unknown: set[str]
    """Keys the re-read could not tell present or gone: their intents stay."""
    refused: int
    remaining: set[str]
    """Attached files still present after their rows went."""
    executed_at: str


def records_plan_citation(policy: Policy) -> dict[str, Any] | None:
    """The ``records_plan`` key of a certificate: the records-management plan decision
    (class code, record type, TOS id and version) its disposal is traceable to."""
    cited = policy.records_plan
    if cited is None:
        return None
    return {
        "class_code": cited.class_code, "record_type": cited.record_type, "tos": cited.tos,
        "version": cited.version, "retention": cited.retention,
    }  # fmt: skip


#: Every file of a share: attachments are named by path, whatever their policy's glob.
SHARE_WIDE = Selection(table="**", key=("path",))


def remove_attachments(share: Connector, paths: Sequence[str]) -> set[str]:
    """Delete files rows pointed at; return those still present afterwards."""
    if not paths:
        return set()
    keys = [(p,) for p in paths]
    try:
        share.apply(SHARE_WIDE, keys, Delete())
        return {str(key[0]) for key in share.reread(SHARE_WIDE, keys, [])}
    except RetentionError:
        return set(paths)  # not confirmed gone: the certificates say unverified


def destroying_step(policy: Policy) -> str | None:
    """What a policy does to the source: delete, anonymise, or nothing (review, keep)."""
    if policy.action in ("delete", "anonymise"):
        return policy.action
    if policy.action == "archive" and policy.then in ("delete", "anonymise"):
        return policy.then
    return None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _in_key_order(due: list[Decided]) -> list[Decided]:
    """Candidates may come in trigger order; changing rows in key order visits a table's
    pages in order (a third faster on SQLite at 1M rows). Keys a database returned with
    mixed types stay as they came."""
    try:
        return sorted(due, key=lambda d: d.record.key)
    except TypeError:
        return due


def _effect(problem: RecordProblem | None) -> str | None:
    return None if problem is None else problem.effect


def _certifiable(problem: RecordProblem | None) -> bool:
    """A record gone by the re-read is certified unless its connector says otherwise."""
    return problem is None or problem.effect == "disposed"


def _disposed_keys(
    keys: Sequence[Key], after: Mapping[Key, Mapping[str, Any]], anonymiser: Anonymiser | None
) -> list[bool]:
    """For each key: gone (delete), or still selected and in its anonymised form (anonymise).

    Keys are compared by their text form, so a driver's type for a key value can never make
    a present record look absent.
    """
    found: dict[str, Mapping[str, Any]] | None = None
    verdicts = []
    for key in keys:
        row = after.get(key)
        if row is None and after:  # not under this key's own type: compare text forms
            if found is None:
                found = {key_json(k): r for k, r in after.items()}
            row = found.get(key_json(key))
        if anonymiser is None:
            verdicts.append(row is None)
        else:
            verdicts.append(row is not None and anonymiser.is_anonymised(row))
    return verdicts


def _selection_from(recheck: Mapping[str, Any]) -> Selection:
    """The selection an intent was written under, so reconciling verifies as the run did."""

    def value(item: Any) -> Any:
        return tuple(item) if isinstance(item, list) else item

    return Selection(
        table=recheck["table"],
        key=tuple(recheck["key"]),
        match={k: value(v) for k, v in recheck.get("match", {}).items()},
        triggers=tuple(recheck.get("triggers", ())),
        trigger_rule=recheck.get("trigger_rule", "latest"),
        bound=date.fromisoformat(recheck["bound"]) if recheck.get("bound") else None,
        unless=tuple(Condition(c, op, value(v)) for c, op, v in recheck.get("unless", ())),
    )


def write_intents(
    conn: sa.Connection,
    run_id: str,
    plan_id: str,
    register: str,
    policy: str,
    recheck: Mapping[str, Any],
    entries: Sequence[Mapping[str, Any]],
    common: Mapping[str, Any],
) -> list[int]:
    """Record what is about to be disposed of, :data:`INTENTS_PER_ROW` records to a row;
    returns the rows' ids. The caller commits before it changes the source.

    A row holds the certificate fields its records share once (``common``), and each
    record's own beside its key: a third of the bytes of whole certificates per record."""
    recheck_text = json.dumps(recheck)
    created = utcnow()
    ids: list[int] = []
    for start in range(0, len(entries), INTENTS_PER_ROW):
        chunk = entries[start : start + INTENTS_PER_ROW]
        result = conn.execute(intent_batches.insert().values(
            run_id=run_id, plan_id=plan_id, register=register, policy=policy,
            records=len(chunk),
            intents=canonical({"common": common, "records": list(chunk)}).decode("utf-8"),
            recheck=recheck_text, created_at=created,
        ))  # fmt: skip
        key = result.inserted_primary_key
        assert key is not None  # an autoincrement primary key always comes back
        ids.append(int(key[0]))
    return ids


@dataclass
class _Pending:
    """Intents written under one recheck: a batch row, or legacy per-record rows."""

    recheck: str
    register: str
    policy: str
    entries: list[dict[str, Any]]
    batch_id: int | None = None
    legacy_ids: list[int] = field(default_factory=list)


def _pending(ws: Workspace, mine: set[tuple[str, str]]) -> list[_Pending]:
    """The intents of these (register, policy) pairs, read by the indexes on both tables:
    other policies' batches, with their bodies, stay in the database."""

    def of_mine(table: sa.Table) -> sa.ColumnElement[bool]:
        c = table.c
        return sa.or_(*(sa.and_(c.register == r, c.policy == p) for r, p in sorted(mine)))

    found: list[_Pending] = []
    if not mine:
        return found
    with ws.state.connect() as conn:
        batches = sa.select(intent_batches).where(of_mine(intent_batches))
        for row in conn.execute(batches.order_by(intent_batches.c.id)):
            found.append(_Pending(row.recheck, row.register, row.policy,
                                  _intent_entries(row.intents), batch_id=row.id))  # fmt: skip
        legacy: dict[tuple[str, str, str], _Pending] = {}
        for row in conn.execute(sa.select(intents).where(of_mine(intents)).order_by(intents.c.id)):
            unit = legacy.setdefault(
                (row.recheck, row.register, row.policy),
                _Pending(row.recheck, row.register, row.policy, []),
            )
            unit.entries.append({
                "record_ref": row.record_ref, "key": row.key,
                "certificate": json.loads(row.certificate),
                "attachments": json.loads(row.attachments) if row.attachments else None,
            })  # fmt: skip
            unit.legacy_ids.append(row.id)
    return found + list(legacy.values())


def _settle(conn: sa.Connection, unit: _Pending, waiting: Sequence[int]) -> None:
    """Drop a unit's intents, except those of the records at ``waiting`` (their positions
    in ``unit.entries``), which a later run must still settle."""
    if unit.batch_id is not None:
        rows = intent_batches.c.id == unit.batch_id
        if not waiting:
            conn.execute(sa.delete(intent_batches).where(rows))
        elif len(waiting) < len(unit.entries):  # each entry already holds its whole body
            kept = [unit.entries[i] for i in waiting]
            conn.execute(sa.update(intent_batches).where(rows).values(
                records=len(kept),
                intents=canonical({"common": {}, "records": kept}).decode("utf-8"),
            ))  # fmt: skip
    keep = {unit.legacy_ids[i] for i in waiting if i < len(unit.legacy_ids)}
    settled = [i for i in unit.legacy_ids if i not in keep]
    if settled:
        conn.execute(sa.delete(intents).where(intents.c.id.in_(settled)))


def _intent_entries(text: str) -> list[dict[str, Any]]:
    """The records of one intent row, each with its whole certificate body."""
    stored = json.loads(text)
    if isinstance(stored, list):  # written before shared fields were stored once
        return stored
    common = stored["common"]
    return [{**entry, "certificate": {**common, **entry["certificate"]}}
            for entry in stored["records"]]  # fmt: skip


def reconcile(
    ws: Workspace,
    run_id: str,
    policies: Sequence[BoundPolicy],
    unsettled: dict[tuple[str, str], list[Noted]] | None = None,
    counts: dict[str, int] | None = None,
) -> int:
    """Finish intents of interrupted runs by re-reading the source; return certificates made.

    Only intents of ``policies`` are touched: this run holds their locks, so whoever wrote
    those intents is no longer running. Another policy's intents wait for a run of it.
    A record the re-read cannot tell present or gone keeps its intent; it and any other
    record problem is added to ``unsettled`` under its (register, policy).

    The certificates are this run's (``run_id``): it re-read the source and certifies, and
    its checkpoint signs only its own run's certificates; the plan they name is still the one
    that decided. ``counts`` receives them by policy name, for this run's summary.
    """
    mine = {(p.register.id, p.policy.id) for p in policies}
    units = _pending(ws, mine)
    if not units:
        return 0
    certified = dropped = 0
    for unit in units:
        recheck = json.loads(unit.recheck)
        if recheck["connector"] not in ws.catalog.sources:
            continue  # the connector left the catalog: keep the intents for when it returns
        anonymiser = Anonymiser(recheck["anonymise"], ws.secret) if recheck["anonymise"] else None
        selection = _selection_from(recheck)
        rows = unit.entries
        try:
            connector = ws.connector(recheck["connector"])
            keys = [
                connector.parse_key(recheck["table"], recheck["key"], json.loads(r["key"]))
                for r in rows
            ]
            connector.problems()  # what earlier reads found is not about these records
            after = connector.reread(
                selection, keys, anonymiser.fields if anonymiser else [],
                selected_only=anonymiser is not None,
            )  # fmt: skip
        except (RetentionError, ValueError) as exc:
            # Unreachable now, or keys it cannot restore: keep the intents for a later run.
            _log.warning("IntentsKept", policy=unit.policy, intents=len(rows),
                         reason=type(exc).__name__)  # fmt: skip
            continue
        executed_at = utcnow().isoformat()
        found = problems.collect(
            ws.secret, connector, recheck["connector"], recheck["table"],
            [] if unsettled is None else unsettled.setdefault((unit.register, unit.policy), []),
            f"{unit.register}/{unit.policy}",
        )  # fmt: skip
        verdicts = _disposed_keys(keys, after, anonymiser)
        texts = [key_json(k) for k in keys]
        disposed = [
            r for r, text, gone in zip(rows, texts, verdicts, strict=True)
            if gone and _certifiable(found.get(text))
        ]  # fmt: skip
        waiting = [i for i, text in enumerate(texts) if _effect(found.get(text)) == "unknown"]
        attached = {r["record_ref"]: list(r["attachments"] or []) for r in disposed}
        remaining: set[str] = set()
        share_id = recheck.get("share")
        if share_id is not None and share_id in ws.catalog.sources:
            remaining = remove_attachments(
                ws.connector(share_id), [p for paths in attached.values() for p in paths]
            )
        elif share_id is not None:  # the share left the catalog: its files cannot be checked
            remaining = {p for paths in attached.values() for p in paths}
        bodies = [
            {**r["certificate"], "run_id": run_id, "executed_at": executed_at,
             "verified": connector.capabilities.reread
             and not remaining.intersection(attached[r["record_ref"]])}
            for r in disposed
        ]  # fmt: skip
        with ws.state.begin() as conn:
            Ledger.append(conn, bodies)
            _settle(conn, unit, waiting)
        certified += len(bodies)
        dropped += len(rows) - len(bodies) - len(waiting)
        if counts is not None and bodies:
            name = f"{unit.register}/{unit.policy}"
            counts[name] = counts.get(name, 0) + len(bodies)
    events.emit(events.IntentsReconciled(run_id, certified, dropped))
    return certified
