"""Replay after a restore from a backup: dispose again of records the ledger says are gone.

Restoring a source from a backup brings back records that certificates say were deleted or
anonymised, and a normal run never touches them again: a record with a certificate is
``done``. A replay scans the records each policy governs, recomputes their ``record_ref``
and looks up, one indexed query per batch, the certificates executed since a day D. A
record with one is *restored* when it is the record that certificate disposed of (the same
fingerprint: not a new record that took its key since) and is present (delete) or present
and not in its anonymised form (anonymise); it is disposed of again through the engine's
own pipeline (:func:`retention.enforce.execute.enforce`: locks, valves, intents, change, re-read,
certificates) with ``reason: replay`` and ``replaces:`` the id of its most recent
certificate. Holds and ``unless`` exceptions still keep records. A record disposed of
again is absent or anonymised, so replaying once more finds nothing, though its new
certificate is after D too.

A restored record is judged by the policy as it is now: its current action and
anonymisation, its holds and exceptions. Certificates of erasure requests replay too, since
the person asked for erasure; archive policies dispose again without archiving again (the
package of the original disposal holds the record).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from retention.catalog.loading import BoundPolicy
from retention.connectors.base import Connector, Record, Selection
from retention.decide.done import fingerprint, identity_columns
from retention.decide.fingerprint import decision_columns
from retention.decide.holds import Hold, HoldIndex
from retention.decide.plan import (
    Decided,
    Decision,
    conditions,
    is_marked,
    record_expires_on,
    what_keeps,
)
from retention.enforce.anonymise import Anonymiser
from retention.enforce.execute import RunOutcome, destroying_step, enforce
from retention.errors import EXIT_PARTIAL, EXIT_SUCCESS, RetentionError, UsageError
from retention.evidence.ledger import Ledger, Prior
from retention.pseudonym import Secret, key_json
from retention.workspace import Workspace

REASON = "replay"


@dataclass(frozen=True, slots=True)
class ReplayDecided(Decided):
    """A restored record's decision, with the certificate its disposal repeats."""

    replaces: str = ""


@dataclass
class ReplayCounts:
    scanned: int = 0
    """Records the policy governs (its match filter), read from the source."""
    certified: int = 0
    """Records with a certificate executed since D."""
    restored: int = 0
    """Certified records found present (delete) or not anonymised (anonymise)."""
    held: int = 0
    kept: int = 0
    """Restored records an ``unless`` exception keeps."""

    @property
    def still_disposed(self) -> int:
        """Certified records found absent or anonymised, as their certificates say."""
        return max(0, self.certified - self.restored)


class ReplayDecisions:
    """Decider-like: the restored records of one policy, batch by batch, as ``expire`` (or
    ``held``, or ``retain`` with the ``unless`` reason); other records are not yielded."""

    def __init__(
        self,
        bound: BoundPolicy,
        connector: Connector,
        secret: Secret,
        ledger: Ledger,
        holds: Sequence[Hold],
        as_of: date,
        since: date,
        batch_size: int,
    ) -> None:
        policy = bound.policy
        self.bound, self.connector, self.secret, self.ledger = bound, connector, secret, ledger
        self.as_of, self.since, self.batch_size = as_of, since, batch_size
        self.holds = HoldIndex(holds, bound.register.id, policy.id)
        self.unless = conditions(policy)
        self.identity = identity_columns(policy, connector.capabilities.versions)
        step = destroying_step(policy)
        self.anonymiser = Anonymiser(policy.anonymise, secret) if step == "anonymise" else None
        read = (*decision_columns(policy), *(self.anonymiser.fields if self.anonymiser else ()),
                *connector.capabilities.versions)  # fmt: skip
        # No due cutoff: a restored record is disposed of because it was, due today or not
        # (an erasure request's record never was). The change still re-checks match/unless.
        self.selection: Selection | None = Selection(
            table=policy.location, key=policy.key, match=policy.match, triggers=policy.trigger,
            trigger_rule=policy.trigger_rule, columns=tuple(dict.fromkeys(c for c in read if c)),
            unless=self.unless,
        )  # fmt: skip
        self.counts = ReplayCounts()

    def scanned(self) -> int:
        policy = self.bound.policy
        governed = Selection(table=policy.location, key=policy.key, match=policy.match)
        return self.connector.count(governed, candidates_only=False)

    def candidate_count(self) -> int:
        """At most this many records can be restored: those certified since D."""
        return self.ledger.certified_since(self.bound.register.id, self.bound.policy.id,
                                           self.since)  # fmt: skip

    def batches(self) -> Iterator[list[Decided]]:
        """One batch per page of governed records (an empty one when none was restored)."""
        assert self.selection is not None
        policy = self.bound.policy
        self.counts = ReplayCounts(certified=self.candidate_count())
        for page in self.connector.candidates(self.selection, self.batch_size):
            self.counts.scanned += len(page)
            refs = [self.secret.record_ref(policy.connector, policy.location, r.key) for r in page]
            latest = self.ledger.latest_since(self.bound.register.id, policy.id, refs, self.since)
            batch: list[Decided] = []
            for record, ref in zip(page, refs, strict=True):
                original = latest.get(ref)
                if original is None or not self._restored(record, ref, original):
                    continue
                decided = self._decide(record, ref, original.certificate_id)
                self.counts.restored += 1
                self.counts.held += decided.decision == "held"
                self.counts.kept += decided.decision == "retain"
                batch.append(decided)
            yield batch

    def _restored(self, record: Record, ref: str, original: Prior) -> bool:
        """Present (it was read), the record its certificate disposed of (not a new record
        under its key), and for anonymisation not in its anonymised form."""
        if original.fingerprint is not None and original.fingerprint != fingerprint(
            self.secret, ref, self.identity, record
        ):
            return False  # a new record that took the key: a normal run decides it
        return self.anonymiser is None or not self.anonymiser.is_anonymised(record.values)

    def _decide(self, record: Record, ref: str, original: str) -> ReplayDecided:
        policy = self.bound.policy
        key = key_json(record.key)
        expires = record_expires_on(self.bound, record.trigger)
        secret = any(is_marked(record.values.get(c)) for c in policy.secret)
        decision, reason, hold = what_keeps(policy, self.unless, self.holds, self.secret,
                                            record, key)  # fmt: skip
        return ReplayDecided(record, ref, key, decision, expires, hold, secret, reason,
                             replaces=original)  # fmt: skip


class Replay:
    """What a replay run hands the engine: restored records, certified as replays."""

    reason = REASON

    def __init__(self, ws: Workspace, since: date, as_of: date) -> None:
        self.ws, self.since, self.as_of = ws, since, as_of
        self.made: dict[str, ReplayDecisions] = {}

    def decisions(self, bound: BoundPolicy, holds: Sequence[Hold]) -> ReplayDecisions:
        made = ReplayDecisions(
            bound, self.ws.connector(bound.policy.connector), self.ws.secret, self.ws.ledger,
            holds, self.as_of, self.since, self.ws.catalog.settings.batch_size,
        )  # fmt: skip
        self.made[bound.name] = made
        return made

    def certificate_fields(self, decided: Decided) -> Mapping[str, Any]:
        assert isinstance(decided, ReplayDecided)
        return {"replaces": decided.replaces}


@dataclass(frozen=True)
class ReplayRecord:
    """A restored record as a dry run lists it: by key and reference, never by value."""

    key: str
    record_ref: str
    decision: Decision
    """``expire`` (would be disposed of again), ``held``, or ``retain`` (an exception)."""
    replaces: str
    hold: str | None = None
    reason: str | None = None


@dataclass
class PolicyReplay:
    name: str
    register: str
    policy: str
    action: str
    status: str = "planned"
    message: str | None = None
    counts: ReplayCounts = field(default_factory=ReplayCounts)
    disposed: int = 0
    """Disposed of again and certified (0 in a dry run)."""
    unchanged: int = 0
    """Restored records the source did not change because they changed since they were read."""
    records: list[ReplayRecord] = field(default_factory=list)
    """A dry run's restored records."""


@dataclass
class ReplayOutcome:
    since: date
    as_of: date
    dry_run: bool
    policies: list[PolicyReplay] = field(default_factory=list)
    run: RunOutcome | None = None

    @property
    def exit_code(self) -> int:
        if self.run is not None:
            return self.run.exit_code
        return EXIT_PARTIAL if any(p.status == "failed" for p in self.policies) else EXIT_SUCCESS


def replayable(ws: Workspace, names: Sequence[str] = ()) -> list[BoundPolicy]:
    """The enabled policies that delete or anonymise records, among ``names`` (default all)."""
    chosen = [
        bound
        for bound in ws.catalog.select(list(names) or ["*"])
        if bound.policy.enabled and destroying_step(bound.policy) is not None
    ]
    if names and not chosen:
        raise UsageError(f"--policy {' '.join(names)}: no enabled policy there deletes or "
                         "anonymises records, so there is nothing to replay")  # fmt: skip
    return chosen


def replay(
    ws: Workspace,
    policies: Sequence[BoundPolicy],
    since: date,
    as_of: date,
    *,
    dry_run: bool = False,
) -> ReplayOutcome:
    """Dispose again of the restored records of ``policies`` certified since ``since``; with
    ``dry_run``, list them and change nothing (no source, no state)."""
    outcome = ReplayOutcome(since, as_of, dry_run)
    override = Replay(ws, since, as_of)
    if dry_run:
        active = ws.holds.active(as_of)
        for bound in policies:
            outcome.policies.append(_dry_run(override.decisions(bound, active), bound))
        return outcome
    outcome.run = enforce(ws, policies, as_of, "replay", override=override)
    for result in outcome.run.policies:
        made = override.made.get(result.name)
        counts = made.counts if made is not None else ReplayCounts()
        counts.scanned = result.counts.scanned
        counts.held = result.counts.held  # with holds placed while the run went on
        outcome.policies.append(PolicyReplay(
            result.name, result.register, result.policy, result.action, result.status,
            result.message, counts, result.disposed, result.unchanged,
        ))  # fmt: skip
    return outcome


def _dry_run(decisions: ReplayDecisions, bound: BoundPolicy) -> PolicyReplay:
    result = PolicyReplay(bound.name, bound.register.id, bound.policy.id, bound.policy.action)
    try:
        for batch in decisions.batches():
            for d in batch:
                assert isinstance(d, ReplayDecided)
                reason = None if d.secret else d.reason
                shown = ReplayRecord(d.key, d.ref, d.decision, d.replaces, d.shown_hold, reason)
                result.records.append(shown)
    except RetentionError as exc:  # SourceUnavailable: the other policies still report
        result.status, result.message = "failed", str(exc)
    result.counts = decisions.counts
    return result
