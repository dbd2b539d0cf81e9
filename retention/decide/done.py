"""What ``done`` means: this very record was disposed of, by the action the policy takes now.

A record reference names a key, and keys come back: a file path is written again, a natural
key or a SQLite rowid is issued to a new record. So a certificate carries a keyed
``fingerprint`` of the record as it was disposed of — its reference, trigger date and the
policy's decision columns that the disposal leaves as they were (an anonymised column is
left out, so an anonymised record keeps its fingerprint) — and its ``action``. A record is
``done`` when a certificate under its policy has its reference, its fingerprint today, and
the action the policy takes today. Otherwise it is decided again like any other record: a
new record under an old key waits until it is due; a record anonymised under a rule that now
deletes is deleted, and certified again.

Certificates written before fingerprints existed have none: they keep the meaning they had,
done for their reference (with their action), so an upgrade disposes of nothing again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from retention.catalog.model import Policy
from retention.connectors.base import Record
from retention.decide.fingerprint import decision_columns
from retention.evidence.certificate import ACTION_DONE, canonical
from retention.evidence.ledger import Prior
from retention.pseudonym import Secret, key_text


def certified_action(policy: Policy) -> str | None:
    """The ``action`` a certificate of this policy's disposal says (None: it disposes of
    nothing, a review policy)."""
    step = policy.action
    if policy.action == "archive" and policy.then in ("delete", "anonymise"):
        step = policy.then
    return ACTION_DONE.get(step)


def identity_columns(policy: Policy, versions: Sequence[str] = ()) -> tuple[str, ...]:
    """The decision columns the policy's disposal does not rewrite, and the source's
    ``versions`` columns (``Capabilities.versions``: a file's modification time)."""
    kept = (c for c in decision_columns(policy) if c not in policy.anonymise)
    return tuple(dict.fromkeys((*kept, *versions)))


def fingerprint(secret: Secret, ref: str, columns: Sequence[str], record: Record) -> str:
    """Keyed fingerprint of ``record`` (named by ``ref``) over its trigger date and
    ``columns``; no personal data can be read back from it."""
    values = record.values
    body = {
        "record_ref": ref,
        "trigger": None if record.trigger is None else key_text(record.trigger),
        "values": {c: None if values.get(c) is None else key_text(values.get(c))
                   for c in columns},
    }  # fmt: skip
    return secret.fingerprint_of(canonical(body))


def judge(priors: Sequence[Prior], action: str | None, own: Callable[[], str]) -> bool:
    """Whether a record with ``priors`` (its earlier certificates) is done: one of them is
    of this record and says ``action``. ``own()`` gives the record's fingerprint, worked out
    only when a prior has one to compare."""
    mine: str | None = None
    for prior in priors:
        if prior.action is not None and prior.action != action:
            continue  # disposed of by another rule: the rule of today is still to apply
        if prior.fingerprint is None:
            return True  # written before fingerprints: done for its reference, as it was
        if mine is None:
            mine = own()
        if prior.fingerprint == mine:
            return True
    return False
