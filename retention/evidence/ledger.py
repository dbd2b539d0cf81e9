"""The append-only certificate ledger in the state database, and its signed checkpoints.

The ledger is an RFC 9162 Merkle tree (:mod:`retention.evidence.merkle`): each certificate is
a leaf naming its batch header (:mod:`retention.evidence.leaf`); certificates of the chained
ledger before revision 0009 are its first leaves. Appends are serialised by first *updating*
the single ``ledger_head`` row inside the appending transaction: that takes a write lock on
every database (a row lock on PostgreSQL and MariaDB, the database write lock on SQLite), so
two writers can never both extend the tree from the same frontier. Each run closes with a
checkpoint — the range since the previous one, and the tree's size and root as a C2SP signed
note (:mod:`retention.evidence.note`) — signed with the installation's Ed25519 key.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Engine

from retention.errors import LedgerError
from retention.evidence import keyring, leaf, merkle, note, signing
from retention.evidence.certificate import canonical, disposed_early
from retention.evidence.logverify import LogVerifier
from retention.logs import get_logger

if TYPE_CHECKING:
    from retention.evidence.decisions import JournalReport
from retention.state.database import (
    GENESIS_HASH,
    as_utc,
    batch_headers,
    bulk_insert,
    certificates,
    checkpoints,
    ledger_head,
    ledger_nodes,
    ref_aliases,
    runs,
    start_of_utc_day,
    utcnow,
)
from retention.state.refs import chunks, refs_in

_PAGE = 5000
_log = get_logger("retention")


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
    key_id: str | None = None
    """The id of the public key verified with."""
    pinned_key_id: str | None = None
    """The key pinned in the state database (None: a ledger made before pinning)."""
    keys: list[str] = field(default_factory=list)
    """The pinned key and every key reached from it by a signed rotation, oldest first."""
    last_signed: tuple[int, str] | None = None
    """The last checkpoint's last seq and hash: compare with an earlier export's or log's to
    see that nothing after it was removed whole (certificates, checkpoint and run row)."""
    tree: tuple[int, str] | None = None
    """The Merkle tree re-hashed from the leaves: its size and hex root."""
    interrupted: dict[str, int] = field(default_factory=dict)
    """Runs that never finished (crashed, or still running), and how many certificates each
    wrote: signed into a later run's checkpoint, or waiting for one."""
    decisions: JournalReport | None = None
    """The decision journal's :class:`retention.evidence.decisions.JournalReport`, where
    verified with the ledger (its faults are among ``faults``)."""

    @property
    def ok(self) -> bool:
        return not self.faults


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._aliased: set[tuple[str, str]] | None = None
        self._alias_keys: list[Ed25519PublicKey] | None = None
        self._headers = Headers()

    def done(self, register: str, policy: str, refs: Sequence[str]) -> dict[str, list[Prior]]:
        """The certificates under this policy of those of ``refs`` that have any: what
        :func:`retention.decide.done.judge` needs to tell whether each record is done. A record
        certified before a rotation of the secret is found under the reference its
        certificate carries (see :data:`retention.state.database.ref_aliases`), with the fingerprint
        the rotation worked out for it under the new secret.

        One query per batch on the record-reference prefix index (revision 0012), which a
        batch of references meets only where they were certified."""
        if not refs:
            return {}
        c = certificates.c
        mine = sa.and_(c.register == register, c.policy == policy)
        found: dict[str, list[Prior]] = {}
        with self.engine.connect() as conn:
            looked_up = self._certified_refs(conn, register, policy, refs)
            for chunk in chunks(looked_up):
                query = sa.select(c.record_ref, c.certificate_id, c.action, c.fingerprint).where(
                    mine, refs_in(c.record_ref, chunk, self.engine.dialect.name)
                )
                for ref, certificate_id, action, fingerprint in conn.execute(query):
                    if ref not in looked_up:
                        continue  # equal only under a case-insensitive collation: not this one
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
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            looked_up = self._certified_refs(conn, register, policy, refs)
            for chunk in chunks(looked_up):
                query = sa.select(certificates.c.record_ref).where(
                    mine, refs_in(certificates.c.record_ref, chunk, self.engine.dialect.name)
                )
                found.update(
                    (looked_up[ref][0], ref) for ref in conn.scalars(query) if ref in looked_up
                )
        return found

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
        keys = self._trusted_keys()
        for start in range(0, len(refs), 500):
            query = sa.select(ref_aliases).where(
                a.register == register, a.policy == policy,
                a.record_ref.in_(refs[start : start + 500]),
            )  # fmt: skip
            for row in conn.execute(query).mappings():
                signature = row["signature"]
                if not signature or not any(
                    signing.verify(k, alias_body(dict(row)), signature) for k in keys
                ):
                    _log.error("RecordAliasRefused", register=register, policy=policy,
                               record_ref=row["record_ref"])  # fmt: skip
                    continue  # not the engine's: the record is decided as itself
                looked_up[row["certified_ref"]] = (row["record_ref"], row["fingerprint"])
        return looked_up

    def _trusted_keys(self) -> list[Ed25519PublicKey]:
        """The public keys of the pinned chain (read once per ledger), which sign aliases."""
        if self._alias_keys is None:
            self._alias_keys = [k.public_key for k in keyring.load(self.engine).keys]
        return self._alias_keys

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
        under this policy: one query on the record-reference prefix index."""
        if not refs:
            return {}
        c = certificates.c
        latest: dict[str, tuple[int, Prior]] = {}
        with self.engine.connect() as conn:
            looked_up = self._certified_refs(conn, register, policy, refs)
            for chunk in chunks(looked_up):
                query = (
                    sa.select(c.seq, c.record_ref, c.certificate_id, c.action, c.fingerprint)
                    .where(c.register == register, c.policy == policy,
                           refs_in(c.record_ref, chunk, self.engine.dialect.name),
                           c.executed_at >= start_of_utc_day(since))
                )  # fmt: skip
                for row in conn.execute(query):
                    if row.record_ref not in looked_up:
                        continue  # equal only under a case-insensitive collation
                    now, renewed = looked_up[row.record_ref]
                    kept = row.fingerprint if now == row.record_ref else renewed
                    if now not in latest or latest[now][0] < row.seq:
                        latest[now] = (row.seq, Prior(row.certificate_id, row.action, kept))
        return {now: prior for now, (_seq, prior) in latest.items()}

    def certified_since(self, register: str, policy: str, since: date) -> int:
        """How many records of one policy have a certificate executed since ``since`` (UTC)."""
        c = certificates.c
        query = sa.select(sa.func.count(sa.distinct(c.record_ref))).where(
            c.register == register, c.policy == policy, c.executed_at >= start_of_utc_day(since)
        )
        with self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def seqs_of_record(self, register: str, policy: str, ref: str) -> list[int]:
        """The seq of every certificate of one record under one policy (by the indexed
        reference, or the one it had when certified before a rotation of the secret)."""
        c = certificates.c
        with self.engine.connect() as conn:
            looked_up = self._certified_refs(conn, register, policy, [ref])
            query = sa.select(c.seq).where(
                c.register == register,
                c.policy == policy,
                refs_in(c.record_ref, list(looked_up), self.engine.dialect.name),
            )
            return sorted(conn.scalars(query))

    def seqs_of_subject(self, subject_ref: str) -> list[int]:
        """The seq of every certificate an erasure request for this subject made: the batch
        headers that name the subject's keyed reference, then their leaves (by policy)."""
        c = certificates.c
        out: list[int] = []
        with self.engine.connect() as conn:
            found = [
                (hashed, body)
                for hashed, text in conn.execute(sa.select(batch_headers))
                if (body := orjson.loads(text)).get("subject_ref") == subject_ref
            ]
            for hashed, body in found:
                query = sa.select(c.seq).where(
                    c.register == body.get("register"), c.policy == body.get("policy"),
                    c.header == hashed,
                )  # fmt: skip
                out.extend(conn.scalars(query))
        return sorted(out)

    def certificate_for(self, register: str, policy: str, ref: str) -> dict[str, Any] | None:
        """The latest certificate of one record under one policy (by the indexed reference,
        or the one it had when certified before a rotation of the secret)."""
        with self.engine.connect() as conn:
            looked_up = self._certified_refs(conn, register, policy, [ref])
            query = (
                sa.select(certificates.c.body, certificates.c.header)
                .where(certificates.c.register == register, certificates.c.policy == policy,
                       refs_in(certificates.c.record_ref, list(looked_up),
                               self.engine.dialect.name))
                .order_by(certificates.c.seq.desc())
                .limit(1)
            )  # fmt: skip
            rows = conn.execute(query).all()
            return self._headers.join(conn, rows)[0] if rows else None

    @staticmethod
    def append(conn: sa.Connection, bodies: Iterable[Mapping[str, Any]]) -> None:
        """Append ``bodies`` in order as leaves of the Merkle tree; the caller owns the
        transaction.

        Each body is split into its leaf and its batch header (:mod:`retention.evidence.leaf`);
        a header is hashed once for a run of bodies that share it and stored once, however many
        batches name it. The tree's frontier in ``ledger_head`` takes the batch's leaf hashes in
        memory: no interior node is written per record. ``bodies`` may be a generator: a batch
        holds its rows and not two more copies of every certificate besides."""
        pending = iter(bodies)
        first = next(pending, None)
        if first is None:
            return
        head = ledger_head.c
        conn.execute(sa.update(ledger_head).where(head.id == 1).values(last_seq=head.last_seq))
        seq, tree = conn.execute(sa.select(head.last_seq, head.tree).where(head.id == 1)).one()
        frontier = _frontier(seq, tree, keep_from=NODE_LEVEL)
        rows: list[dict[str, Any]] = []
        headers: dict[str, str] = {}
        moments: dict[str, datetime] = {}  # a batch shares one execution time: parse it once
        shared: dict[str, Any] | None = None
        shared_hash = ""
        hashed = b""
        for body in itertools.chain((first,), pending):
            seq += 1
            own, header = leaf.split(body)
            if header != shared:
                shared, shared_hash = header, leaf.header_hash(header)
                headers.setdefault(shared_hash, canonical(header).decode("utf-8"))
            own["seq"] = seq
            encoded = leaf.encode(own, shared_hash)
            hashed = merkle.leaf_hash(encoded)
            frontier.append(hashed)
            executed = own["executed_at"]
            moment = moments.get(executed)
            if moment is None:
                moment = moments[executed] = datetime.fromisoformat(executed)
            rows.append({
                "seq": seq, "certificate_id": own["certificate_id"], "run_id": header["run_id"],
                "register": header["register"], "policy": header["policy"],
                "record_ref": own["record_ref"], "executed_at": moment, "hash": hashed.hex(),
                "body": encoded.decode("utf-8"), "action": header.get("action"),
                "fingerprint": own.get("fingerprint"), "header": shared_hash,
            })  # fmt: skip
        known = set(conn.scalars(
            sa.select(batch_headers.c.hash).where(batch_headers.c.hash.in_(list(headers)))
        ))  # fmt: skip
        missing = [{"hash": h, "body": text} for h, text in headers.items() if h not in known]
        if missing:
            conn.execute(batch_headers.insert(), missing)
        bulk_insert(conn, certificates, rows)
        if frontier.completed:
            conn.execute(ledger_nodes.insert(), [
                {"level": level, "idx": idx, "hash": node.hex()}
                for level, idx, node in frontier.completed
            ])  # fmt: skip
        conn.execute(
            sa.update(ledger_head)
            .where(head.id == 1)
            .values(last_seq=seq, last_hash=hashed.hex(), tree=json.dumps(frontier.state()))
        )

    def checkpoint(self, run_id: str, key: Ed25519PrivateKey) -> dict[str, Any] | None:
        """Sign everything appended since the previous checkpoint; None if nothing was.

        The signature vouches for certificates this run can account for: its own, and those
        of runs that started with a signed start and have not finished (one running beside
        it, or one that crashed before its own checkpoint), named in the body with their
        counts. A certificate of an unknown or finished run, or of an unsigned start, was not
        written by the engine: nothing is signed (:class:`ForeignCertificates`)."""
        chain = keyring.require_current(self.engine, key)
        with self.engine.begin() as conn:
            head = ledger_head.c
            conn.execute(sa.update(ledger_head).where(head.id == 1).values(last_seq=head.last_seq))
            last_seq, last_hash, tree = conn.execute(
                sa.select(head.last_seq, head.last_hash, head.tree).where(head.id == 1)
            ).one()
            previous = conn.scalar(sa.select(sa.func.max(checkpoints.c.last_seq))) or 0
            if last_seq <= previous:
                return None
            owners = _owners(conn, previous, last_seq)
            refused = _unaccountable(conn, run_id, owners, chain)
            if refused:
                _log.error("CheckpointRefused", first_seq=previous + 1, last_seq=last_seq,
                           foreign=refused)  # fmt: skip
                raise ForeignCertificates(
                    f"run {run_id} refuses to sign the certificates after seq {previous}: "
                    + "; ".join(refused)
                    + ". They were not written by this engine's runs (the state database was "
                    "written to outside it?). Nothing is signed until they are explained: see "
                    "docs/exports.md, 'What verify checks'"
                )
            body = {
                "run_id": run_id,
                "first_seq": previous + 1,
                "last_seq": last_seq,
                "count": last_seq - previous,
                "last_hash": last_hash,
                "signed_at": utcnow().isoformat(),
                "key_id": signing.key_id(key.public_key()),
                "runs": {owner: n for owner, (n, _) in sorted(owners.items())},
            }
            origin = note.origin_for(chain.pinned or signing.key_id(key.public_key()))
            text = note.checkpoint_text(origin, last_seq, _frontier(last_seq, tree).root())
            body["tree_size"] = last_seq
            body["note"] = note.sign(text, origin, key)
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
            query = sa.select(certificates.c.seq, certificates.c.body, certificates.c.header).where(
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
                joined = self._headers.join(conn, rows)
            yield from joined
            if len(rows) < _PAGE:
                return
            last = rows[-1].seq

    def checkpoint_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(checkpoints).order_by(checkpoints.c.last_seq)).all()
        return [{**json.loads(r.body), "signature": r.signature} for r in rows]

    def verify(
        self, public_key: Ed25519PublicKey, *, also: Sequence[Ed25519PublicKey] = ()
    ) -> LedgerReport:
        """Re-hash the whole chain, check every checkpoint signature against the pinned key
        chain, every indexed column against the signed body, and every run against its
        certificates. ``also``: further keys that must be in the chain (the catalog's own key,
        when another is given)."""
        report = LedgerReport(key_id=signing.key_id(public_key))
        chain = keyring.load(self.engine)
        report.faults.extend(chain.faults)
        report.pinned_key_id = chain.pinned
        report.keys = [k.key_id for k in chain.keys]
        if chain.keys:
            for key in (public_key, *also):
                kid = signing.key_id(key)
                if chain.find(kid) is None:
                    report.faults.append(
                        f"the public key {kid} is not the pinned key {chain.pinned} nor reached "
                        "from it by a signed rotation"
                    )
        marks = {cp["last_seq"]: cp for cp in self.checkpoint_rows()}
        report.checkpoints = len(marks)
        expected_first = 1
        for last_seq in sorted(marks):
            cp = marks[last_seq]
            report.faults.extend(_checkpoint_faults(cp, chain, public_key))
            if (
                cp.get("first_seq") != expected_first
                or cp.get("count") != last_seq - expected_first + 1
            ):
                report.faults.append(
                    f"checkpoint up to seq {last_seq}: its range does not follow "
                    "the previous checkpoint"
                )
            expected_first = last_seq + 1
        signed_to = max(marks) if marks else 0
        if marks:
            report.last_signed = (signed_to, str(marks[signed_to].get("last_hash")))
        ledger = LogVerifier(GENESIS_HASH)
        self._headers = Headers()  # read afresh: verify trusts nothing cached
        trees = {int(cp["tree_size"]): cp for cp in marks.values() if "tree_size" in cp}
        counts: dict[str, list[int]] = {}  # run -> [certificates, signed, highest seq]
        for row, cert in self._rows():
            hashed = ledger.feed(cert, row.body.encode("utf-8"))
            if row.header is not None and row.hash != hashed.hex():
                report.faults.append(
                    f"certificate {cert.get('certificate_id')} (seq {row.seq}): its leaf does "
                    "not match its hash (altered, or its hash column changed outside the engine)"
                )
            tree = trees.get(ledger.count)
            if tree is not None and ledger.frontier is not None:
                report.faults.extend(_tree_faults(tree, ledger.frontier.root(), chain, public_key))
            report.faults.extend(_column_faults(row, cert))
            early = disposed_early(cert)
            if early is not None:
                report.faults.append(early)
            mine = counts.setdefault(str(row.run_id), [0, 0, 0])
            mine[0] += 1
            mine[1] += row.seq <= signed_to
            mine[2] = row.seq
            mark = marks.get(cert.get("seq"))
            if mark is not None and mark.get("last_hash") != cert.get("hash"):
                report.faults.append(
                    f"certificate {cert.get('certificate_id')} (seq {cert.get('seq')}): "
                    "differs from what the signed checkpoint recorded"
                )
        report.faults[:0] = ledger.faults + self._headers.faults
        for size in sorted(trees):
            if size > ledger.count:
                report.faults.append(
                    f"the checkpoint of tree size {size} signs more leaves than the ledger "
                    f"holds ({ledger.count}): certificates removed"
                )
        report.certificates = ledger.count
        last_seq = ledger.last_seq or 0
        missing = [s for s in marks if s > last_seq]
        if missing:
            report.faults.append(
                f"certificates up to seq {max(missing)} were signed in a checkpoint but are "
                "missing from the ledger"
            )
        with self.engine.connect() as conn:
            head_seq, head_hash, head_tree = conn.execute(
                sa.select(ledger_head.c.last_seq, ledger_head.c.last_hash, ledger_head.c.tree)
            ).one()
        if head_seq != last_seq or (last_seq and head_hash != ledger.last_hash):
            report.faults.append(
                f"the ledger head records seq {head_seq} but the ledger ends at seq {last_seq} "
                "(certificates removed or added outside the engine)"
            )
        elif ledger.frontier is not None and json.loads(head_tree or "null") != (
            ledger.frontier.state()
        ):
            report.faults.append(
                "the ledger head's Merkle tree is not that of the certificates (changed outside "
                "the engine): the next checkpoint would sign a wrong root"
            )
        if ledger.frontier is not None:
            report.tree = (ledger.frontier.size, ledger.frontier.root().hex())
        report.unsigned = last_seq - signed_to
        if report.unsigned:
            finished = self._finished_runs_after(signed_to)
            if finished:
                report.faults.append(
                    f"certificates after seq {signed_to} belong to run(s) "
                    f"{', '.join(sorted(finished))} that finished without a signed checkpoint "
                    "covering them (a checkpoint removed?)"
                )
        self._check_runs(counts, chain, report)
        report.faults.extend(self._alias_faults([k.public_key for k in chain.keys] or [public_key]))
        return report

    def _alias_faults(self, keys: Sequence[Ed25519PublicKey]) -> list[str]:
        """Every alias a secret rotation stored must carry a signature by a trusted key: a row
        added outside the engine would make a record done (or replayable) as another."""
        faults = []
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(ref_aliases)).mappings():
                signature = row["signature"]
                body = alias_body(dict(row))
                if not signature or not any(signing.verify(k, body, signature) for k in keys):
                    faults.append(
                        f"record alias {str(row['record_ref'])[:16]} of {row['register']}/"
                        f"{row['policy']}: not signed by the installation's key (written outside "
                        "a secret rotation)"
                    )
        return faults

    def _rows(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Every certificate row with its indexed columns and parsed body, in ledger order."""
        c = certificates.c
        last = 0
        while True:
            query = (
                sa.select(c.seq, c.certificate_id, c.run_id, c.register, c.policy, c.record_ref,
                          c.executed_at, c.hash, c.action, c.fingerprint, c.body, c.header)
                .where(c.seq > last).order_by(c.seq).limit(_PAGE)
            )  # fmt: skip
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
                joined = self._headers.join(conn, rows)
            yield from zip(rows, joined, strict=True)
            if len(rows) < _PAGE:
                return
            last = rows[-1].seq

    def _check_runs(
        self, counts: Mapping[str, list[int]], chain: keyring.KeyChain, report: LedgerReport
    ) -> None:
        """Every certificate belongs to a run that started; every finished run's disposed
        count is the number of its certificates (none removed, none added)."""
        with self.engine.connect() as conn:
            rows = {
                r.run_id: r
                for r in conn.execute(sa.select(runs.c.run_id, runs.c.plan_id, runs.c.finished_at,
                                                runs.c.summary, runs.c.signature))
            }  # fmt: skip
        for run_id, (total, _signed, top) in sorted(counts.items()):
            row = rows.get(run_id)
            if row is None:
                report.faults.append(
                    f"{total} certificate(s) of run {run_id}, which is not in the runs table "
                    "(an unknown run: written outside the engine?)"
                )
            elif row.finished_at is None:
                if top > chain.pinned_at_seq and not run_start_verifies(
                    chain, row.run_id, row.plan_id, row.signature
                ):
                    report.faults.append(
                        f"{total} certificate(s) of run {run_id}, which never finished and "
                        "whose start is not signed (a run made up outside the engine?)"
                    )
                else:
                    report.interrupted[run_id] = total
        for run_id, row in sorted(rows.items()):
            if row.finished_at is None:
                continue
            disposed = _disposed(row.summary)
            held = counts.get(run_id, [0])[0]
            if disposed is not None and disposed != held:
                report.faults.append(
                    f"run {run_id} finished having disposed of {disposed} records, but the "
                    f"ledger holds {held} certificate(s) of it"
                    + (" (certificates removed: a thinned ledger)" if held < disposed else "")
                )

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


#: The lowest level of the perfect subtrees stored in ``ledger_nodes``: 2^8 leaves.
NODE_LEVEL = 8


def _frontier(size: int, tree: str | None, keep_from: int | None = None) -> merkle.Frontier:
    """The tree's frontier as ``ledger_head`` stores it."""
    try:
        return merkle.Frontier.restore(size, json.loads(tree or "null") or [], keep_from)
    except (ValueError, TypeError) as exc:
        raise LedgerError(
            f"the ledger head's Merkle tree does not fit its {size} certificates ({exc}): the "
            "state database was changed outside the engine; `retention verify` says more"
        ) from None


class Headers:
    """Batch headers read from ``batch_headers`` as leaves name them, each read once: a run
    writes one per policy, so a ledger of millions of leaves has few."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any] | None] = {}
        self.faults: list[str] = []

    def join(self, conn: sa.Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """The certificates of certificate rows (``body`` and ``header`` columns), joined."""
        wanted = {r.header for r in rows if r.header is not None and r.header not in self.bodies}
        if wanted:
            found = conn.execute(
                sa.select(batch_headers.c.hash, batch_headers.c.body)
                .where(batch_headers.c.hash.in_(sorted(wanted)))
            ).all()  # fmt: skip
            for hashed, text in found:
                body = orjson.loads(text)
                if leaf.header_hash(body) != hashed:
                    self.faults.append(
                        f"batch header {hashed[:16]}: its content does not match its hash "
                        "(altered outside the engine)"
                    )
                self.bodies[hashed] = body
            for hashed in wanted - set(self.bodies):
                self.bodies[hashed] = None
                self.faults.append(f"batch header {hashed[:16]} is missing (removed?)")
        out = []
        for row in rows:
            parsed = orjson.loads(row.body)
            if row.header is None:
                out.append(parsed)
                continue
            header = self.bodies.get(row.header)
            out.append(leaf.join(row.body.encode("utf-8"), parsed, header or {}))
        return out


class ForeignCertificates(LedgerError):
    """Certificates after the last checkpoint that no run of this engine accounts for."""


#: The certificate columns the state database indexes and queries by, each a copy of the
#: body's field of the same name: verify checks every one against the signed body.
INDEXED = ("seq", "certificate_id", "run_id", "register", "policy", "record_ref", "hash",
           "action", "fingerprint")  # fmt: skip
#: A leaf's ``header`` column names the batch header it is joined with; its leaf names it too.
_LEAF_INDEXED = ("header",)
"""Columns ``done`` and exports read instead of the body: blanking a fingerprint would make
its record done by reference alone, so each is held to the signed body."""


def alias_body(alias: Mapping[str, Any]) -> bytes:
    """The canonical text of a ``ref_aliases`` row that its signature covers."""
    fields = ("register", "policy", "record_ref", "certified_ref", "fingerprint")
    return canonical({name: alias.get(name) for name in fields})


#: The indexed columns as :meth:`Ledger._rows` selects them, for one comparison per row.
_ROW_COLUMNS = ("seq", "certificate_id", "run_id", "register", "policy", "record_ref",
                "executed_at", "hash", "action", "fingerprint", "body", "header")  # fmt: skip
_indexed_of_row = operator.itemgetter(*(_ROW_COLUMNS.index(c) for c in INDEXED + _LEAF_INDEXED))


@functools.lru_cache(maxsize=64)
def _moment(text: str) -> datetime | None:
    """An ``executed_at`` as a datetime: a batch shares one, so each is parsed once."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _column_faults(row: Any, cert: Mapping[str, Any]) -> list[str]:
    """Every indexed column against the certificate; one tuple comparison when all agree."""
    columns = _indexed_of_row(row)
    wanted = tuple(cert.get(c) for c in INDEXED + _LEAF_INDEXED)
    if row.header is None:
        columns, wanted = columns[:-1], wanted[:-1]
    executed = _moment(str(cert.get("executed_at")))
    if columns == wanted and executed is not None and as_utc(row.executed_at) == executed:
        return []
    name = f"certificate {cert.get('certificate_id')} (seq {row.seq})"
    faults = [
        f"{name}: its {column} column ({getattr(row, column)!r}) differs from its signed body "
        f"({cert.get(column)!r}): changed outside the engine"
        for column in INDEXED + (_LEAF_INDEXED if row.header is not None else ())
        if getattr(row, column) != cert.get(column)
    ]
    if executed is None or as_utc(row.executed_at) != executed:
        faults.append(
            f"{name}: its executed_at column ({row.executed_at}) differs from its signed body "
            f"({cert.get('executed_at')}): changed outside the engine"
        )
    return faults


def _checkpoint_faults(
    cp: Mapping[str, Any], chain: keyring.KeyChain, public_key: Ed25519PublicKey
) -> list[str]:
    """A checkpoint's signature, by the key the pinned chain says signs its range."""
    name = f"checkpoint of run {cp.get('run_id')} (up to seq {cp.get('last_seq')})"
    body = canonical({k: v for k, v in cp.items() if k != "signature"})
    if not chain.keys:  # a ledger made before pinning, verified without the private key
        if not signing.verify(public_key, body, cp["signature"]):
            return [f"{name}: signature does not verify with this public key"]
        return []
    named = chain.find(cp.get("key_id"))
    if named is None:
        return [
            f"{name}: signed by key {cp.get('key_id')}, which is not the pinned key "
            f"{chain.pinned} nor reached from it by a signed rotation"
        ]
    expected = chain.signer_for(int(cp.get("last_seq") or 0))
    faults = []
    if expected is not None and expected.key_id != named.key_id:
        faults.append(
            f"{name}: signed by key {named.key_id}, but key {expected.key_id} signs that part "
            "of the ledger (rotated in from seq "
            f"{expected.from_seq + 1})"
        )
    if not signing.verify(named.public_key, body, cp["signature"]):
        faults.append(f"{name}: signature does not verify with key {named.key_id}")
    return faults


def _tree_faults(
    cp: Mapping[str, Any], root: bytes, chain: keyring.KeyChain, public_key: Ed25519PublicKey
) -> list[str]:
    """A checkpoint's signed note against the root re-hashed from the leaves."""
    size = cp.get("tree_size")
    name = f"checkpoint of tree size {size}"
    try:
        parsed = note.parse(str(cp.get("note")))
    except note.NoteError as exc:
        return [f"{name}: {exc}"]
    faults = []
    if parsed.size != size:
        faults.append(f"{name}: its signed note says tree size {parsed.size}")
    if parsed.root != root:
        faults.append(
            f"{name}: the root re-hashed from the leaves differs from the signed root "
            "(a certificate up to it was altered, removed or inserted)"
        )
    keys = [k.public_key for k in chain.keys] or [public_key]
    if not any(note.verified_by(parsed, parsed.origin, k) for k in keys):
        faults.append(f"{name}: its signed note does not verify with the pinned key chain")
    return faults


def _disposed(summary: str | None) -> int | None:
    """How many certificates a finished run's summary says it made (None: it says nothing):
    what it disposed of, and what it certified for intents an earlier run left."""
    if not summary:
        return None
    try:
        policies = json.loads(summary)
        return sum(
            int(p.get("disposed", 0)) + int(p.get("reconciled", 0)) for p in policies.values()
        )
    except (ValueError, TypeError, AttributeError):
        return None


def _owners(conn: sa.Connection, after: int, upto: int) -> dict[str, tuple[int, int]]:
    """run -> (certificates, highest seq) among seq ``after`` + 1 .. ``upto``."""
    c = certificates.c
    query = (
        sa.select(c.run_id, sa.func.count(), sa.func.max(c.seq))
        .where(c.seq > after, c.seq <= upto)
        .group_by(c.run_id)
    )
    return {str(r[0]): (int(r[1]), int(r[2])) for r in conn.execute(query)}


def _unaccountable(
    conn: sa.Connection,
    run_id: str,
    owners: Mapping[str, tuple[int, int]],
    chain: keyring.KeyChain,
) -> list[str]:
    """Why certificates of other runs in a checkpoint's range cannot be signed by it."""
    foreign = sorted(set(owners) - {run_id})
    if not foreign:
        return []
    r = runs.c
    rows = {
        row.run_id: row
        for row in conn.execute(
            sa.select(r.run_id, r.plan_id, r.finished_at, r.signature).where(r.run_id.in_(foreign))
        )
    }
    refused = []
    for other in foreign:
        count, top = owners[other]
        row = rows.get(other)
        if row is None:
            refused.append(f"{count} certificate(s) of run {other}, which is not in the runs table")
        elif row.finished_at is not None:
            refused.append(f"{count} certificate(s) of run {other}, which had finished already")
        elif top > chain.pinned_at_seq and not run_start_verifies(
            chain, row.run_id, row.plan_id, row.signature
        ):
            refused.append(f"{count} certificate(s) of run {other}, whose start is not signed")
    return refused


def _start_statement(run_id: str, plan_id: str) -> bytes:
    return canonical({"kind": "run-start", "run_id": run_id, "plan_id": plan_id})


def sign_run_start(key: Ed25519PrivateKey, run_id: str, plan_id: str) -> str:
    """The ``runs.signature`` of a run starting now: ``<key id>:<signature>``."""
    return (
        f"{signing.key_id(key.public_key())}:{signing.sign(key, _start_statement(run_id, plan_id))}"
    )


def run_start_verifies(
    chain: keyring.KeyChain, run_id: str, plan_id: str, signature: str | None
) -> bool:
    """Whether a run's start was signed by a key of the pinned chain."""
    kid, _, value = (signature or "").partition(":")
    key = chain.find(kid)
    return key is not None and signing.verify(
        key.public_key, _start_statement(run_id, plan_id), value
    )
