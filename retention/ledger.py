"""The append-only certificate ledger in the state database, and its signed checkpoints.

Appends are serialised by first *updating* the single ``ledger_head`` row inside the
appending transaction: that takes a write lock on every database (a row lock on PostgreSQL
and MariaDB, the database write lock on SQLite), so two writers can never both extend the
chain from the same hash. Each run closes with a checkpoint — count and last hash since the
previous checkpoint — signed with the installation's Ed25519 key.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Engine

from retention import signing
from retention.certificate import ChainVerifier, canonical, disposed_early, seal
from retention.sql_sets import one_of
from retention.state import (
    GENESIS_HASH,
    bulk_insert,
    certificates,
    checkpoints,
    ledger_head,
    ref_aliases,
    runs,
    start_of_utc_day,
    utcnow,
)

_PAGE = 5000


@dataclass(frozen=True, slots=True)
class Prior:
    """One certificate of a record under a policy, as the ledger indexes it."""

    certificate_id: str
    action: str | None
    """``deleted``, ``anonymised`` or ``archived``."""
    fingerprint: str | None
    """The record as it was disposed of (retention/done.py); None for a certificate written
    before fingerprints existed."""


@dataclass
class LedgerReport:
    """What ``retention verify`` found in the ledger."""

    certificates: int = 0
    checkpoints: int = 0
    unsigned: int = 0
    faults: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._aliased: set[tuple[str, str]] | None = None

    def done(self, register: str, policy: str, refs: Sequence[str]) -> dict[str, list[Prior]]:
        """The certificates under this policy of those of ``refs`` that have any: what
        :func:`retention.done.judge` needs to tell whether each record is done. A record
        certified before a rotation of the secret is found under the reference its
        certificate carries (see :data:`retention.state.ref_aliases`), with the fingerprint
        the rotation worked out for it under the new secret.

        One query on the (register, policy, record_ref) index per batch. A policy with no
        certificate at all (the first plan or run over a backlog) is told by one index
        probe, without sending the batch's references."""
        if not refs:
            return {}
        c = certificates.c
        mine = sa.and_(c.register == register, c.policy == policy)
        found: dict[str, list[Prior]] = {}
        with self.engine.connect() as conn:
            if conn.scalar(sa.select(sa.literal(1)).where(mine).limit(1)) is None:
                return found
            looked_up = self._certified_refs(conn, register, policy, refs)
            query = sa.select(c.record_ref, c.certificate_id, c.action, c.fingerprint).where(
                mine, one_of(c.record_ref, list(looked_up), self.engine.dialect.name)
            )
            for ref, certificate_id, action, fingerprint in conn.execute(query):
                now, renewed = looked_up[ref]
                prior = Prior(certificate_id, action, fingerprint if now == ref else renewed)
                found.setdefault(now, []).append(prior)
        return found

    def certified_as(self, register: str, policy: str, refs: Sequence[str]) -> dict[str, str]:
        """For each of ``refs`` with a certificate under this policy, the reference that
        certificate carries: itself, or the record's reference before a rotation."""
        if not refs:
            return {}
        mine = sa.and_(certificates.c.register == register, certificates.c.policy == policy)
        with self.engine.connect() as conn:
            if conn.scalar(sa.select(sa.literal(1)).where(mine).limit(1)) is None:
                return {}
            looked_up = self._certified_refs(conn, register, policy, refs)
            query = sa.select(certificates.c.record_ref).where(
                mine, one_of(certificates.c.record_ref, list(looked_up), self.engine.dialect.name)
            )
            return {looked_up[ref][0]: ref for ref in conn.scalars(query)}

    def _certified_refs(
        self, conn: sa.Connection, register: str, policy: str, refs: Sequence[str]
    ) -> dict[str, tuple[str, str | None]]:
        """The references to look certificates up by → (the record's reference now, its
        fingerprint under the new secret if it was certified before a rotation): each
        reference itself, and for a record certified before a rotation the reference its
        certificate carries."""
        looked_up: dict[str, tuple[str, str | None]] = {ref: (ref, None) for ref in refs}
        if (register, policy) not in self._aliased_policies(conn):
            return looked_up
        a = ref_aliases.c
        for start in range(0, len(refs), 500):
            query = sa.select(a.record_ref, a.certified_ref, a.fingerprint).where(
                a.register == register, a.policy == policy,
                a.record_ref.in_(refs[start : start + 500]),
            )  # fmt: skip
            for now, certified, renewed in conn.execute(query):
                looked_up[certified] = (now, renewed)
        return looked_up

    def _aliased_policies(self, conn: sa.Connection) -> set[tuple[str, str]]:
        """The policies with records certified before a rotation (read once per ledger)."""
        if self._aliased is None:
            a = ref_aliases.c
            pairs = conn.execute(sa.select(a.register, a.policy).distinct())
            self._aliased = {(row.register, row.policy) for row in pairs}
        return self._aliased

    def latest_since(
        self, register: str, policy: str, refs: Sequence[str], since: date
    ) -> dict[str, Prior]:
        """For each of ``refs`` certified since ``since`` (UTC), its latest certificate
        under this policy: one query on the (register, policy, record_ref) index."""
        if not refs:
            return {}
        c = certificates.c
        with self.engine.connect() as conn:
            looked_up = self._certified_refs(conn, register, policy, refs)
            query = (
                sa.select(c.record_ref, c.certificate_id, c.action, c.fingerprint)
                .where(c.register == register, c.policy == policy,
                       one_of(c.record_ref, list(looked_up), self.engine.dialect.name),
                       c.executed_at >= start_of_utc_day(since))
                .order_by(c.seq)
            )  # fmt: skip
            out: dict[str, Prior] = {}
            for row in conn.execute(query):
                now, renewed = looked_up[row.record_ref]
                kept = row.fingerprint if now == row.record_ref else renewed
                out[now] = Prior(row.certificate_id, row.action, kept)
            return out

    def certified_since(self, register: str, policy: str, since: date) -> int:
        """How many records of one policy have a certificate executed since ``since`` (UTC)."""
        c = certificates.c
        query = sa.select(sa.func.count(sa.distinct(c.record_ref))).where(
            c.register == register, c.policy == policy, c.executed_at >= start_of_utc_day(since)
        )
        with self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def certificate_for(self, register: str, policy: str, ref: str) -> dict[str, Any] | None:
        """The latest certificate of one record under one policy (by the indexed reference,
        or the one it had when certified before a rotation of the secret)."""
        with self.engine.connect() as conn:
            looked_up = self._certified_refs(conn, register, policy, [ref])
            query = (
                sa.select(certificates.c.body)
                .where(certificates.c.register == register, certificates.c.policy == policy,
                       certificates.c.record_ref.in_(list(looked_up)))
                .order_by(certificates.c.seq.desc())
                .limit(1)
            )  # fmt: skip
            body = conn.scalar(query)
        return None if body is None else dict(json.loads(body))

    @staticmethod
    def append(conn: sa.Connection, bodies: Iterable[Mapping[str, Any]]) -> None:
        """Seal and insert ``bodies`` in order; the caller owns the transaction.

        ``bodies`` may be a generator: each body, and the certificate sealed from it, lives
        only until its row is made, so a batch holds its rows and not two more copies of
        every certificate besides."""
        pending = iter(bodies)
        first = next(pending, None)
        if first is None:
            return
        head = ledger_head.c
        conn.execute(sa.update(ledger_head).where(head.id == 1).values(last_seq=head.last_seq))
        seq, previous = conn.execute(
            sa.select(head.last_seq, head.last_hash).where(head.id == 1)
        ).one()
        rows: list[dict[str, Any]] = []
        moments: dict[str, datetime] = {}  # a batch shares one execution time: parse it once
        for body in itertools.chain((first,), pending):
            seq += 1
            cert = seal(body, seq, previous)
            previous = cert["hash"]
            executed = cert["executed_at"]
            moment = moments.get(executed)
            if moment is None:
                moment = moments[executed] = datetime.fromisoformat(executed)
            rows.append({
                "seq": seq, "certificate_id": cert["certificate_id"], "run_id": cert["run_id"],
                "register": cert["register"], "policy": cert["policy"],
                "record_ref": cert["record_ref"], "executed_at": moment, "hash": previous,
                "body": canonical(cert).decode("utf-8"), "action": cert.get("action"),
                "fingerprint": cert.get("fingerprint"),
            })  # fmt: skip
        bulk_insert(conn, certificates, rows)
        conn.execute(
            sa.update(ledger_head).where(head.id == 1).values(last_seq=seq, last_hash=previous)
        )

    def checkpoint(self, run_id: str, key: Ed25519PrivateKey) -> dict[str, Any] | None:
        """Sign everything appended since the previous checkpoint; None if nothing was."""
        with self.engine.begin() as conn:
            head = ledger_head.c
            conn.execute(sa.update(ledger_head).where(head.id == 1).values(last_seq=head.last_seq))
            last_seq, last_hash = conn.execute(
                sa.select(head.last_seq, head.last_hash).where(head.id == 1)
            ).one()
            previous = conn.scalar(sa.select(sa.func.max(checkpoints.c.last_seq))) or 0
            if last_seq <= previous:
                return None
            body = {
                "run_id": run_id,
                "first_seq": previous + 1,
                "last_seq": last_seq,
                "count": last_seq - previous,
                "last_hash": last_hash,
                "signed_at": utcnow().isoformat(),
                "key_id": signing.key_id(key.public_key()),
            }
            signature = signing.sign(key, canonical(body))
            conn.execute(
                checkpoints.insert().values(
                    last_seq=last_seq,
                    run_id=run_id,
                    body=canonical(body).decode("utf-8"),
                    signature=signature,
                )
            )
        return {**body, "signature": signature}

    def iter_certificates(
        self, since: date | None = None, until: date | None = None, register: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Certificates in ledger order, streamed page by page."""
        last = 0
        while True:
            query = sa.select(certificates.c.seq, certificates.c.body).where(
                certificates.c.seq > last
            )
            if since is not None:
                query = query.where(certificates.c.executed_at >= start_of_utc_day(since))
            if until is not None:
                query = query.where(
                    certificates.c.executed_at < start_of_utc_day(until + timedelta(days=1))
                )
            if register is not None:
                query = query.where(certificates.c.register == register)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(certificates.c.seq).limit(_PAGE)).all()
            for row in rows:
                yield orjson.loads(row.body)
            if len(rows) < _PAGE:
                return
            last = rows[-1].seq

    def checkpoint_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(checkpoints).order_by(checkpoints.c.last_seq)).all()
        return [{**json.loads(r.body), "signature": r.signature} for r in rows]

    def verify(self, public_key: Ed25519PublicKey) -> LedgerReport:
        """Re-hash the whole chain and check every checkpoint signature."""
        report = LedgerReport()
        marks = {cp["last_seq"]: cp for cp in self.checkpoint_rows()}
        report.checkpoints = len(marks)
        expected_first = 1
        for last_seq in sorted(marks):
            cp = marks[last_seq]
            body = {k: v for k, v in cp.items() if k != "signature"}
            if not signing.verify(public_key, canonical(body), cp["signature"]):
                report.faults.append(
                    f"checkpoint of run {cp.get('run_id')} (up to seq {last_seq}): "
                    "signature does not verify with this public key"
                )
            if (
                cp.get("first_seq") != expected_first
                or cp.get("count") != last_seq - expected_first + 1
            ):
                report.faults.append(
                    f"checkpoint up to seq {last_seq}: its range does not follow "
                    "the previous checkpoint"
                )
            expected_first = last_seq + 1
        chain = ChainVerifier(GENESIS_HASH)
        for cert in self.iter_certificates():
            chain.feed(cert)
            early = disposed_early(cert)
            if early is not None:
                report.faults.append(early)
            mark = marks.get(cert.get("seq"))
            if mark is not None and mark.get("last_hash") != cert.get("hash"):
                report.faults.append(
                    f"certificate {cert.get('certificate_id')} (seq {cert.get('seq')}): "
                    "differs from what the signed checkpoint recorded"
                )
        report.faults[:0] = chain.faults
        report.certificates = chain.count
        last_seq = chain.last_seq or 0
        missing = [s for s in marks if s > last_seq]
        if missing:
            report.faults.append(
                f"certificates up to seq {max(missing)} were signed in a checkpoint but are "
                "missing from the ledger"
            )
        with self.engine.connect() as conn:
            head_seq, head_hash = conn.execute(
                sa.select(ledger_head.c.last_seq, ledger_head.c.last_hash)
            ).one()
        if head_seq != last_seq or (last_seq and head_hash != chain.last_hash):
            report.faults.append(
                f"the ledger head records seq {head_seq} but the ledger ends at seq {last_seq} "
                "(certificates removed or added outside the engine)"
            )
        signed_to = max(marks) if marks else 0
        report.unsigned = last_seq - signed_to
        if report.unsigned:
            finished = self._finished_runs_after(signed_to)
            if finished:
                report.faults.append(
                    f"certificates after seq {signed_to} belong to run(s) "
                    f"{', '.join(sorted(finished))} that finished without a signed checkpoint "
                    "covering them (a checkpoint removed?)"
                )
        return report

    def _finished_runs_after(self, seq: int) -> set[str]:
        """Finished runs that own certificates after ``seq``: each run signs what it wrote."""
        query = (
            sa.select(runs.c.run_id)
            .where(runs.c.finished_at.is_not(None))
            .where(runs.c.run_id.in_(
                sa.select(certificates.c.run_id).where(certificates.c.seq > seq).distinct()
            ))
        )  # fmt: skip
        with self.engine.connect() as conn:
            return set(conn.scalars(query))
