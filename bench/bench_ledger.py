"""Benchmark the evidence a disposal costs per record, and `retention verify` of a large ledger.

    python bench/bench_ledger.py [--backend sqlite|postgresql] [--records 200000]
                                 [--batch 10000] [--leaves 1000000]

Prints, per record: the leaf encodings compared (canonical JSON, as stored, against a fixed
binary layout, and against the chained certificate the ledger wrote before revision 0009),
the Python cost of turning a certificate body into a leaf (split, encode, hash, tree), and
the whole ``Ledger.append`` into the state database (Python and database). Then it fills a
ledger of ``--leaves`` leaves, signs a checkpoint, and runs ``Ledger.verify`` in a child
process, printing its time and peak RSS. Prints figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from retention.evidence import leaf, merkle
from retention.evidence.certificate import canonical, new_certificate_id, seal
from retention.evidence.ledger import Ledger
from retention.state.database import GENESIS_HASH, open_state, runs
from retention.testing import scratch_database

RUN = "R20261122-bench000"
EXECUTED = datetime(2026, 11, 22, 1, 2, 3, 456789, tzinfo=UTC).isoformat()
COMMON = {
    "run_id": RUN, "plan_id": "P20261122-bench000", "approved_by": "Sähkö Öljynen",
    "register": "bench", "policy": "anonymise", "policy_sha256": "a" * 64,
    "action": "anonymised", "reason": "retention",
    "fields": ["first_name", "last_name", "email", "phone", "person_id"],
    "legal_basis": "GDPR 6(1)(c) – Lukiolaki 714/2018 64 §",
}  # fmt: skip


def bodies(n: int, start: int = 0) -> Iterator[dict[str, Any]]:
    """Certificate bodies as a run makes them: the policy's shared keys and each record's."""
    for i in range(start, start + n):
        ref = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()  # keyed references look random
        yield {
            **COMMON, "certificate_id": new_certificate_id(), "record_ref": ref,
            "fingerprint": hashlib.sha256(ref.encode()).hexdigest(), "archive": None,
            "trigger_date": "2015-05-31",
            "expires_on": "2025-05-31", "executed_at": EXECUTED, "verified": True,
        }  # fmt: skip


def fixed_layout(own: dict[str, Any], seq: int, header: bytes) -> bytes:
    """A fixed binary leaf of the same fields: what a canonical-JSON leaf is compared with."""
    moment = datetime.fromisoformat(own["executed_at"])
    return struct.pack(
        ">Q16s32s32s32sqiiB",
        seq, uuid.UUID(own["certificate_id"]).bytes, bytes.fromhex(own["record_ref"]),
        bytes.fromhex(own["fingerprint"]), header,
        int(moment.timestamp() * 1_000_000),
        date.fromisoformat(own["trigger_date"]).toordinal(),
        date.fromisoformat(own["expires_on"]).toordinal(), int(own["verified"]),
    )  # fmt: skip


def per_record(label: str, n: int, seconds: float, extra: str = "") -> None:
    print(f"  {label:<46} {seconds / n * 1e6:7.2f} µs/record{extra}")


def best(fn: Any, repeats: int = 5) -> float:
    """The least CPU time of ``repeats`` calls: the machine's other load adds, never takes."""
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def encodings(n: int) -> None:
    sample = list(bodies(n))
    header = bytes.fromhex(leaf.header_hash(leaf.split(sample[0])[1]))
    sizes: dict[str, int] = {}

    def chained() -> None:
        previous = GENESIS_HASH
        size = 0
        for seq, body in enumerate(sample, 1):
            cert = seal(body, seq, previous)
            previous = cert["hash"]
            size += len(canonical(cert))
        sizes["chained"] = size

    def json_leaf() -> None:
        size = 0
        for seq, body in enumerate(sample, 1):
            own, _ = leaf.split(body)
            own["seq"] = seq
            size += len(leaf.encode(own, header.hex()))
        sizes["json"] = size

    def fixed_leaf() -> None:
        size = 0
        for seq, body in enumerate(sample, 1):
            own, _ = leaf.split(body)
            size += len(fixed_layout(own, seq, header))
        sizes["fixed"] = size

    def whole() -> None:
        frontier = merkle.Frontier()
        shared: dict[str, Any] | None = None
        shared_hash = ""
        for seq, body in enumerate(sample, 1):
            own, head = leaf.split(body)
            if head != shared:
                shared, shared_hash = head, leaf.header_hash(head)
            own["seq"] = seq
            frontier.append(merkle.leaf_hash(leaf.encode(own, shared_hash)))

    print(f"leaf encodings ({n} certificates, Python CPU time, best of 5):")
    chained_s, json_s, fixed_s = best(chained), best(json_leaf), best(fixed_leaf)
    per_record("chained certificate before 0009 (seal+text)", n, chained_s,
               f"   {sizes['chained'] / n:.0f} bytes")  # fmt: skip
    per_record("leaf as canonical JSON (split+encode)", n, json_s,
               f"   {sizes['json'] / n:.0f} bytes")  # fmt: skip
    per_record("leaf as fixed binary layout (split+pack)", n, fixed_s,
               f"   {sizes['fixed'] / n:.0f} bytes")  # fmt: skip
    per_record("leaf JSON + header + leaf hash + tree", n, best(whole))


def _start_run(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(runs.insert().values(
            run_id=RUN, plan_id=COMMON["plan_id"], started_at=datetime.now(UTC),
            status="running"))  # fmt: skip


def append(url: str, n: int, batch: int) -> None:
    engine = open_state(url, create=True)
    try:
        _start_run(engine)
        total = cpu = 0.0
        for start in range(0, n, batch):
            chunk = list(bodies(min(batch, n - start), start))
            t, c = time.perf_counter(), time.process_time()
            with engine.begin() as conn:
                Ledger.append(conn, chunk)
            total += time.perf_counter() - t
            cpu += time.process_time() - c
        print(f"Ledger.append ({n} certificates, batches of {batch}, {engine.dialect.name}):")
        per_record("whole append, wall clock", n, total)
        per_record("whole append, this process's CPU", n, cpu,
                   "   (SQLite: Python and database; PostgreSQL: Python and driver)")  # fmt: skip
    finally:
        engine.dispose()


def fill(url: str, n: int, batch: int, key: Ed25519PrivateKey) -> float:
    engine = open_state(url, create=True)
    t = time.perf_counter()
    try:
        _start_run(engine)
        for start in range(0, n, batch):
            with engine.begin() as conn:
                Ledger.append(conn, bodies(min(batch, n - start), start))
        Ledger(engine).checkpoint(RUN, key)
        with engine.begin() as conn:
            conn.execute(runs.update().values(
                finished_at=datetime.now(UTC), status="completed",
                summary=json.dumps({"bench/anonymise": {"disposed": n}})))  # fmt: skip
    finally:
        engine.dispose()
    return time.perf_counter() - t


def verify_child(url: str, public_pem: str) -> int:
    """Run in a child process: verify the ledger, print time and this process's peak RSS."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_pem.encode())
    engine = open_state(url)
    t = time.perf_counter()
    report = Ledger(engine).verify(key)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_leaf = seconds / max(report.certificates, 1) * 1e6
    print(f"  verify: {report.certificates} leaves, ok={report.ok} {report.faults[:2]} in "
          f"{seconds:.1f} s = {per_leaf:.1f} µs/leaf, peak RSS {peak:.0f} MiB")  # fmt: skip
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--verify-child", nargs=2, metavar=("URL", "PEM"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.verify_child:
        return verify_child(*args.verify_child)
    from cryptography.hazmat.primitives import serialization

    encodings(min(args.records, 100_000))
    with tempfile.TemporaryDirectory() as tmp:
        with scratch_database(args.backend, Path(tmp)) as db:
            append(db.url, args.records, args.batch)
        if args.leaves:
            with scratch_database(args.backend, Path(tmp)) as db:
                key = Ed25519PrivateKey.generate()
                print(f"verify of a ledger of {args.leaves} leaves ({args.backend}):")
                filled = fill(db.url, args.leaves, args.batch, key)
                print(f"  filled and checkpointed in {filled:.1f} s")
                pem = (
                    key.public_key()
                    .public_bytes(
                        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
                    .decode()
                )
                subprocess.run([sys.executable, __file__, "--verify-child", db.url, pem],
                               check=False, env=os.environ)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
