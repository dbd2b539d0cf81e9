"""Excluding records from a plan under review: each becomes a record-scoped hold.

A reviewer who finds a record in a plan that must not go (a pending complaint, a record the
plan's rule did not foresee) excludes it with a reason. The exclusion is not a private mark
on the plan: it is a hold on that record, so it shows wherever holds show (``hold list``,
``hold report``, plan reports, ``explain``), keeps the record through ``run --plan`` and any
later run, and is released like any hold. It also changes the plan: the record moves from
``expire`` to ``held`` in the plan's listing and counts, and the reviewer becomes its last
changer and, by four eyes, can no longer approve it (nor does an approval they gave before
count). An exclusion that brings the plan under a rule's threshold (``two_people_above``)
completes it when the approvals it has from others now suffice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from retention.decide import approval
from retention.decide.approval import PlanStatus
from retention.decide.holds import Hold
from retention.decide.identity import REVIEWERS, Identity, NotPermitted
from retention.errors import UsageError
from retention.evidence import decisions
from retention.logs import get_logger
from retention.state.database import plan_policies, plan_records
from retention.state.refs import chunks, refs_in
from retention.workspace import Workspace

_log = get_logger("retention")


@dataclass(frozen=True)
class Exclusion:
    """The holds an exclusion placed (one per record) and the plan as it stands now."""

    holds: tuple[Hold, ...]
    plan: PlanStatus
    seq: int
    """The exclusion's entry in the decision journal."""


def exclude(
    ws: Workspace,
    plan_id: str,
    by: Identity | str,
    policy: str,
    keys: Sequence[Sequence[str]],
    reason: str,
) -> Exclusion:
    """Exclude records of one policy from a pending plan: a hold on each record, the plan's
    last changer recorded, one journal entry; all in one transaction, or nothing.

    ``keys`` are record keys as typed (one value per key column). Each must be a record the
    plan disposes of (decision ``expire``); anything else is refused, naming it by position
    (a key can be personal data and is not repeated)."""
    identity = by if isinstance(by, Identity) else Identity.cli(by)
    why = reason.strip()
    if not why:
        raise UsageError("an exclusion needs a reason")
    if len(why) > 2000:
        raise UsageError("the reason is longer than 2000 characters")
    if not keys:
        raise UsageError("name at least one record to exclude")
    status = approval.plan_status(ws, plan_id)
    if status.kind != approval.APPROVABLE or status.state != "pending":
        what = status.state if status.kind == approval.APPROVABLE else status.kind
        raise UsageError(
            f"plan {plan_id} is {what}: records can be excluded only from a pending plan "
            "(place a hold instead)"
        )
    if identity.authenticated and identity.role not in REVIEWERS:
        raise NotPermitted(
            f"{identity.name} signed in as {identity.role or 'no role'} and may not exclude "
            "records from plans"
        )
    required = status.review.required if status.review is not None else None
    if required is not None and required.four_eyes and not identity.authenticated:
        # Whose approvals count depends on who changed the plan, and a typed name proves
        # nobody: it could be an approver's, whose approval would then count for their change.
        raise approval.FourEyes(
            f"plan {plan_id} needs approvals from distinct signed-in people "
            f"({'; '.join(required.because)}): an exclusion typed at the command line cannot "
            "be attributed to a person, and who changed a plan decides whose approvals count; "
            "exclude in the workspace (`retention serve`) signed in as yourself, or place a "
            "hold on the record (`retention hold add --record KEY`), which keeps it from every run"
        )
    found = ws.catalog.select([policy])
    if len(found) != 1:
        raise UsageError(f"policy {policy!r} names {len(found)} policies; name one")
    bound = found[0]
    rule = bound.policy
    connector = ws.connector(rule.connector)
    register_id, policy_id = bound.register.id, rule.id
    refs: list[str] = []
    for n, key in enumerate(keys, start=1):
        if len(key) != len(rule.key):
            raise UsageError(f"record {n}: the key of {bound.name} has {len(rule.key)} column(s) "
                             f"({', '.join(rule.key)})")  # fmt: skip
        try:
            typed = connector.parse_key(rule.location, rule.key, list(key))
        except ValueError:
            raise UsageError(f"record {n} is not a key of {bound.name}") from None
        refs.append(ws.secret.record_ref(rule.connector, rule.location, typed))
    signer = ws.signing_key()
    decisions.sign_key_ready(ws.state, signer)
    c = plan_records.c
    with ws.state.begin() as conn:
        decisions.lock(conn)  # first: an approval takes the journal, then the plan's row
        in_plan = conn.scalar(
            sa.select(sa.func.count()).select_from(plan_policies).where(
                plan_policies.c.plan_id == plan_id, plan_policies.c.register == register_id,
                plan_policies.c.policy == policy_id)
        )  # fmt: skip
        if not in_plan:
            raise UsageError(f"plan {plan_id} has no policy {bound.name}")
        listed = {
            row.record_ref: (row.key, row.decision)
            for chunk in chunks(dict.fromkeys(refs))
            for row in conn.execute(
                sa.select(c.record_ref, c.key, c.decision).where(
                    c.plan_id == plan_id, refs_in(c.record_ref, chunk, conn.dialect.name),
                    c.register == register_id, c.policy == policy_id)
            )
        }  # fmt: skip
        placed: list[Hold] = []
        excluded: set[str] = set()
        for n, ref in enumerate(refs, start=1):
            if ref in excluded:
                continue  # the same record named twice is excluded once
            if ref not in listed:
                raise UsageError(f"record {n} is not in plan {plan_id} ({bound.name})")
            stored, decision = listed[ref]
            if decision != "expire":
                raise UsageError(
                    f"record {n} is not planned for disposal in plan {plan_id} (its decision: "
                    f"{decision}): there is nothing to exclude"
                )
            hold = ws.holds.place_all(
                reason=why, placed_by=identity.name, secret=None, register=register_id,
                policy=policy_id, record=json.loads(stored), stored_keys=[json.loads(stored)],
                placed_identity=identity.as_dict(), plan_id=plan_id, conn=conn,
            )  # fmt: skip
            placed += hold
            excluded.add(ref)
            _move_to_held(conn, plan_id, register_id, policy_id, ref, hold[0].hold_id)
        _count_held(conn, plan_id, register_id, policy_id, len(excluded))
        approval.mark_changed(conn, status, identity)
        entry = decisions.append(
            conn, signer, "exclusion", identity.as_dict(), plan_id=plan_id,
            details={"reason": why, "policy": bound.name, "record_refs": list(dict.fromkeys(refs)),
                     "holds": [h.hold_id for h in placed]},
        )  # fmt: skip
        approved = approval.complete_if_approved(ws, conn, plan_id)
    _log.info("RecordsExcluded", plan_id=plan_id, policy=bound.name, records=len(excluded),
              excluded_by=identity.name, authenticated=identity.authenticated,
              approved=approved)  # fmt: skip
    return Exclusion(tuple(placed), approval.plan_status(ws, plan_id), entry.seq)


#: The reason an excluded record's row in the plan gives: it is held by its exclusion.
EXCLUDED = "excluded"


def _move_to_held(
    conn: sa.Connection, plan_id: str, register: str, policy: str, ref: str, hold_id: str
) -> None:
    """Make the stored plan say what its run will do: the record ``held`` by its exclusion.
    Every view of the plan (its page, its reports, what approval rules count) reads it, so a
    reviewer never sees an excluded record among the ones to destroy, and the plan approved
    is the plan as it will run: a released exclusion does not bring the record back into
    this plan (the next plan decides it again)."""
    c = plan_records.c
    moved = conn.execute(
        sa.update(plan_records)
        .where(c.plan_id == plan_id, refs_in(c.record_ref, [ref], conn.dialect.name),
               c.register == register, c.policy == policy, c.decision == "expire")
        .values(decision="held", hold_id=hold_id, reason=EXCLUDED)
    ).rowcount  # fmt: skip
    if moved != 1:
        raise UsageError(f"plan {plan_id} changed meanwhile: exclude the record again")


def _count_held(conn: sa.Connection, plan_id: str, register: str, policy: str, n: int) -> None:
    """Move ``n`` records from ``expire`` to ``held`` in the policy's counts, as
    :func:`_move_to_held` moved their rows."""
    p = plan_policies.c
    mine = (p.plan_id == plan_id, p.register == register, p.policy == policy)
    # Locked before it is read: two reviewers excluding at once would otherwise both read the
    # same counts and the second write would undo the first (SQLite lets one writer in).
    counts = json.loads(conn.scalar(sa.select(p.counts).where(*mine).with_for_update()) or "{}")
    counts["expire"] = int(counts.get("expire", 0)) - n
    counts["held"] = int(counts.get("held", 0)) + n
    conn.execute(sa.update(plan_policies).where(*mine).values(counts=json.dumps(counts)))
