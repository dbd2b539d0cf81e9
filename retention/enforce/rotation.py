"""``retention secret rotate``: change RETENTION_SECRET without losing a hold or a proof.

References are HMACs under the secret, so a new secret gives every record and subject a new
reference. What must survive the change, and how:

* **Holds on a data subject** store only the subject's reference. Every record the catalog
  reaches is read; where its subject has an unreleased hold, the hold's reference is
  rewritten to the new secret's. An active subject hold whose subject is on no record cannot
  be carried (the subject itself is stored nowhere): rotation refuses, naming the hold, so it
  is released and placed again deliberately, never silently dropped.
* **Certificates** are hashed into the chain and signed: their ``record_ref`` never changes.
  For every certified record still in a source (an anonymised row, an archived record kept),
  ``ref_aliases`` maps its new reference to the certified one, so it stays ``done`` and is
  never disposed of and certified again. A deleted record is not in a source: if a restore
  brings it back, it is decided afresh under the new secret (and disposed of again only if
  due and not held).
* **Plans** made before the rotation carry the old references and fingerprints: they become
  ``stale`` and can be neither approved nor executed; make a new plan.
* **Intents** of an interrupted run carry old references: rotation refuses while any wait;
  a run reconciles them first.

It needs both secrets — the current one in ``RETENTION_SECRET`` (checked against the
fingerprint) and the new one in a variable the operator names — and holds the lock of every
policy in the catalog, so no run works meanwhile. Pseudonyms already written into sources by
the ``pseudonym`` strategy stay what they are: the old secret's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from retention.connectors.base import Selection
from retention.decide.done import fingerprint, identity_columns
from retention.decide.holds import Hold
from retention.enforce.locks import RunLock
from retention.errors import UsageError
from retention.evidence import signing
from retention.evidence.ledger import alias_body
from retention.logs import get_logger
from retention.pseudonym import SECRET_VARIABLE, Secret, key_json
from retention.state.database import (
    bulk_insert,
    holds,
    intent_batches,
    intents,
    ref_aliases,
    secret_fingerprint,
    utcnow,
)
from retention.state.installation import SecretMismatch, new_fingerprint_row, stored
from retention.workspace import Workspace

_log = get_logger("retention.rotation")


@dataclass(frozen=True)
class Rotation:
    """What a rotation carried over to the new secret."""

    records: int
    """Records read in the sources."""
    certified: int
    """Certified records still in a source, kept ``done`` by an alias."""
    holds: int
    """Subject holds whose reference was rewritten."""


def rotate(ws: Workspace, new_value: str, today: date) -> Rotation:
    """Make ``new_value`` the installation's secret (see the module's docstring)."""
    old = ws.secret  # SecretMismatch unless it is the recorded one
    new = Secret(new_value.encode())  # MissingSecret when too short
    with ws.state.connect() as conn:
        current = stored(conn)
    assert current is not None  # ws.secret recorded it if it was missing
    if current.matches(new_value.encode()):
        raise UsageError("the new secret is the current one: nothing to rotate")
    lease = timedelta(seconds=ws.catalog.settings.lock_lease_seconds)
    lock = RunLock(ws.state, [f"policy:{b.name}" for b in ws.catalog.policies], lease)
    lock.acquire()  # RunLocked: a run is working; rotate when it has finished
    try:
        _refuse_pending_intents(ws)
        subject_holds = {
            h.subject_ref: h for h in ws.holds.all() if h.subject_ref and h.released_at is None
        }
        carried: dict[str, str] = {}
        aliases: list[dict[str, str | None]] = []
        records = 0
        for bound in ws.catalog.policies:
            policy = bound.policy
            connector = ws.connector(policy.connector)
            identity = identity_columns(policy, connector.capabilities.versions)
            subject = policy.subject if subject_holds else None
            selection = Selection(
                table=policy.location, key=policy.key, match=policy.match,
                triggers=policy.trigger, trigger_rule=policy.trigger_rule,
                columns=tuple(dict.fromkeys(c for c in (subject, *identity) if c)),
            )  # fmt: skip
            for page in connector.candidates(selection, ws.catalog.settings.batch_size):
                records += len(page)
                keys = [key_json(r.key) for r in page]
                old_refs = old.record_refs_of(policy.connector, policy.location, keys)
                new_refs = new.record_refs_of(policy.connector, policy.location, keys)
                certified = ws.ledger.certified_as(bound.register.id, policy.id, old_refs)
                priors = ws.ledger.done(bound.register.id, policy.id, list(certified))
                for record, was, now in zip(page, old_refs, new_refs, strict=True):
                    if was not in certified:
                        continue
                    # Only the record its certificate disposed of stays done: a key reused
                    # since is a new record, under the new secret as under the old one.
                    mine = fingerprint(old, was, identity, record)
                    matched = [p for p in priors.get(was, [])
                               if p.fingerprint is None or p.fingerprint == mine]  # fmt: skip
                    if not matched:
                        continue
                    renewed = (fingerprint(new, now, identity, record)
                               if all(p.fingerprint for p in matched) else None)  # fmt: skip
                    aliases.append({
                        "register": bound.register.id, "policy": policy.id, "record_ref": now,
                        "certified_ref": certified[was], "fingerprint": renewed,
                    })  # fmt: skip
                for record in page:
                    value = record.values.get(subject) if subject else None
                    if value is not None and (ref := old.subject_ref(value)) in subject_holds:
                        carried[ref] = new.subject_ref(value)
            lock.refresh()
        _refuse_lost_holds([h for r, h in subject_holds.items() if r not in carried], today)
        key = ws.signing_key()
        for alias in aliases:  # verify holds each to the key: none can be added outside
            alias["signature"] = signing.sign(key, alias_body(alias))
        _store(ws, current.digest, new_value, carried, aliases)
    finally:
        lock.release()
    # This workspace's secret is the old one now, and its ledger knew the old aliases: both
    # are read again on next use (the old secret is then refused).
    ws.__dict__.pop("secret", None)
    ws.__dict__.pop("ledger", None)
    _log.info("SecretRotated", records=records, certified=len(aliases), holds=len(carried))
    return Rotation(records=records, certified=len(aliases), holds=len(carried))


def _refuse_pending_intents(ws: Workspace) -> None:
    with ws.state.connect() as conn:
        pending = conn.scalar(sa.select(sa.func.count()).select_from(intents)) or 0
        pending += conn.scalar(sa.select(sa.func.sum(intent_batches.c.records))) or 0
    if pending:
        raise UsageError(
            f"{pending} records' intents of an interrupted run wait to be reconciled under the "
            "current secret: run `retention run` (or the job) first, then rotate"
        )


def _refuse_lost_holds(lost: list[Hold], today: date) -> None:
    active = sorted(h.hold_id for h in lost if h.active(today))
    if active:
        raise UsageError(
            f"subject hold(s) {', '.join(active)} name a data subject found on no record of "
            "the catalog's sources, so their subject reference cannot be carried to the new "
            "secret (only the reference is stored). Nothing was changed. Release them, rotate, "
            "and place them again with `retention hold add --subject` under the new secret"
        )


def _store(
    ws: Workspace,
    old_digest: str,
    new_value: str,
    carried: dict[str, str],
    aliases: list[dict[str, str | None]],
) -> None:
    """One transaction: the new fingerprint (only if the old one is still recorded), the
    subject holds' new references and the aliases of the certified records."""
    now = utcnow()
    f = secret_fingerprint.c
    with ws.state.begin() as conn:
        swapped = conn.execute(
            sa.update(secret_fingerprint)
            .where(f.id == 1, f.digest == old_digest)
            .values(**new_fingerprint_row(new_value.encode()), rotated_at=now)
        ).rowcount
        if swapped != 1:
            raise SecretMismatch(f"{SECRET_VARIABLE} was rotated by another process meanwhile")
        for was, now_ref in carried.items():
            conn.execute(
                sa.update(holds)
                .where(holds.c.subject_ref == was, holds.c.released_at.is_(None))
                .values(subject_ref=now_ref)
            )
        conn.execute(sa.delete(ref_aliases))  # the previous secret's: no reference matches
        for start in range(0, len(aliases), 5000):
            bulk_insert(conn, ref_aliases, aliases[start : start + 5000])
