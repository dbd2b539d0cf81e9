"""Proofs for one record and for history only growing: an inclusion proof verifies in a
separate process with nothing but the file and the public key, and names the part that was
tampered with; a later export that rewrote history fails against an earlier one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.evidence import merkle, note, signing
from retention.evidence.certificate import canonical
from retention.evidence.proof import leaf_hashes, verify_proof
from retention.state.database import certificates, checkpoints, ledger_head
from retention.workspace import Workspace
from tests.conftest import AS_OF

ALUMNI = "xamk-alumni/alumni-membership"
INTERVIEWEES = "amkoodari/interviewees"


def _cli(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retention", *map(str, args)], cwd=cwd, env=env,
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def _prove(catalog: Path, environ: dict[str, str], out: Path, *args: str) -> dict[str, Any]:
    proc = _cli("certificates", "prove", "--catalog", catalog, *args, "--out", out,
                cwd=catalog, env=environ)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(out.read_text(encoding="utf-8")))


def test_a_proof_for_one_record_verifies_with_only_the_file_and_the_key(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, policies=[ALUMNI], as_of=AS_OF)
        api.run(ws, policies=[INTERVIEWEES], as_of=AS_OF)
        ref = ws.secret.record_ref("crm", "alumni", (1,))
    proof = _prove(catalog, environ, tmp_path / "made" / "proof.json",
                   "--policy", ALUMNI, "--key", "1")  # fmt: skip
    assert proof["tree_size"] == 6 and len(proof["certificates"]) == 1
    text = json.dumps(proof)
    assert ref in text and "010190-900A" not in text and "Aino" not in text
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "made" / "proof.json", alone / "proof.json")
    shutil.copy(catalog / "keys" / "signing.pub.pem", alone / "key.pem")
    proc = _cli("verify", "proof.json", "--public-key", "key.pem", cwd=alone, env={})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verified proof proof.json: 1 certificate(s) in the tree of 6 leaves" in proc.stdout
    # The proof is RFC 9162's: the path, re-hashed by hand, reaches the signed root.
    entry = proof["certificates"][0]
    head = note.parse(proof["checkpoint"])
    path = [__import__("base64").b64decode(p) for p in entry["inclusion_path"]]
    hashed = merkle.leaf_hash(entry["leaf"].encode())
    assert merkle.verify_inclusion(hashed, entry["leaf_index"], 6, path, head.root)

    for part, mutate, named in [
        ("leaf", lambda e: e.update(leaf=e["leaf"].replace('"verified":true',
                                                           '"verified":false')), "the leaf"),
        ("header", lambda e: e["header"].update(policy="other"), "the batch header"),
        ("path", lambda e: e["inclusion_path"].__setitem__(0, _flip(e["inclusion_path"][0])),
         "the inclusion path"),
    ]:  # fmt: skip
        bad = json.loads(json.dumps(proof))
        mutate(bad["certificates"][0])
        faults = _faults(tmp_path / f"{part}.json", bad, catalog)
        assert any(named in f for f in faults), (part, faults)
    for line in range(3):  # origin, size, root: each signed by the checkpoint's signature
        bad = json.loads(json.dumps(proof))
        lines = bad["checkpoint"].split("\n")
        lines[line] = _flip(lines[line]) if line != 1 else str(int(lines[line]) + 1)
        bad["checkpoint"] = "\n".join(lines)
        faults = _faults(tmp_path / f"cp{line}.json", bad, catalog)
        assert any(f.startswith("checkpoint") or "tree_size" in f for f in faults), faults
    bad = json.loads(json.dumps(proof))
    text, _, signature = bad["checkpoint"].rpartition(" ")
    bad["checkpoint"] = f"{text} {_flip(signature.rstrip())}\n"
    assert any("checkpoint" in f for f in _faults(tmp_path / "sig.json", bad, catalog))
    (alone / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    proc = _cli("verify", "bad.json", "--public-key", "key.pem", cwd=alone, env={})
    assert proc.returncode != 0 and "FAIL checkpoint" in proc.stdout, proc.stdout + proc.stderr


def _flip(text: str) -> str:
    """The text with its first base64/hex character changed to another valid one."""
    first = text[0]
    return ("B" if first != "B" else "C") + text[1:]


def _faults(path: Path, proof: dict[str, Any], catalog: Path) -> list[str]:
    path.write_text(json.dumps(proof), encoding="utf-8")
    report = verify_proof(path, signing.load_public(catalog / "keys" / "signing.pub.pem"))
    assert not report.ok
    return report.faults


def test_an_erased_person_gets_a_proof_by_their_identifier(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    with Workspace.open(catalog, environ) as ws:
        outcome = api.erase(ws, "030392-902C", as_of=AS_OF)
        subject_ref = ws.secret.subject_ref("030392-902C")
    assert outcome.exit_code == 0
    proof = _prove(catalog, environ, tmp_path / "p.json", "--subject", "030392-902C")
    assert "030392-902C" not in json.dumps(proof)
    assert [e["header"]["subject_ref"] for e in proof["certificates"]] == [subject_ref]
    report = verify_proof(tmp_path / "p.json",
                          signing.load_public(catalog / "keys" / "signing.pub.pem"))  # fmt: skip
    assert report.ok, report.faults
    assert report.shown[0]["reason"] == "erasure-request"


def _rewrite_history(ws: Workspace, seq: int) -> None:
    """What only the key's holder could do: rewrite one certificate and re-sign every tree
    head since, so that the ledger and its next export verify on their own."""
    key = ws.signing_key()
    with ws.state.begin() as conn:
        body = conn.scalar(sa.select(certificates.c.body).where(certificates.c.seq == seq))
        leaf = json.loads(body)
        leaf["verified"] = not leaf["verified"]
        text = canonical(leaf)
        conn.execute(sa.update(certificates).where(certificates.c.seq == seq).values(
            body=text.decode(), hash=merkle.leaf_hash(text).hex()))  # fmt: skip
    hashes = list(leaf_hashes(ws.state, 10**9))
    frontier = merkle.Frontier()
    frontier.extend(hashes)
    with ws.state.begin() as conn:
        conn.execute(sa.update(ledger_head).values(
            tree=json.dumps(frontier.state()), last_hash=hashes[-1].hex()))  # fmt: skip
        for row in conn.execute(sa.select(checkpoints)).all():
            cp = json.loads(row.body)
            size = cp["tree_size"]
            origin = note.parse(cp["note"]).origin
            cp["note"] = note.sign(note.checkpoint_text(origin, size, merkle.root(hashes[:size])),
                                   origin, key)  # fmt: skip
            cp["last_hash"] = hashes[cp["last_seq"] - 1].hex()
            conn.execute(sa.update(checkpoints).where(checkpoints.c.last_seq == row.last_seq)
                         .values(body=canonical(cp).decode(),
                                 signature=signing.sign(key, canonical(cp))))  # fmt: skip


def test_a_later_export_must_extend_an_earlier_one(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    public = catalog / "keys" / "signing.pub.pem"
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, policies=[ALUMNI], as_of=AS_OF)
        api.export(ws, tmp_path / "q1.jsonl")
        api.run(ws, policies=[INTERVIEWEES], as_of=AS_OF)
        api.export(ws, tmp_path / "q2.csv")
    proc = _cli("verify", tmp_path / "q2.csv", "--since", tmp_path / "q1.jsonl",
                "--public-key", public, cwd=tmp_path, env={})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with Workspace.open(catalog, environ) as ws:
        _rewrite_history(ws, 2)
        assert api.verify_ledger(ws).ok, api.verify_ledger(ws).faults
        api.export(ws, tmp_path / "q3.jsonl")
    alone = api.verify_file(tmp_path / "q3.jsonl", public)
    assert alone.ok, alone.faults  # on its own the rewritten history looks whole
    report = api.verify_file(tmp_path / "q3.jsonl", public, tmp_path / "q1.jsonl")
    assert not report.ok
    assert any("does not extend q1.jsonl" in f for f in report.faults), report.faults
    # A filtered export has no tree to compare, and says so.
    with Workspace.open(catalog, environ) as ws:
        api.export(ws, tmp_path / "part.jsonl", register="amkoodari")
    partial = api.verify_file(tmp_path / "part.jsonl", public, tmp_path / "q1.jsonl")
    assert any("not a complete export" in f for f in partial.faults), partial.faults


@pytest.mark.parametrize("tamper", ["leaf", "header"])
def test_a_complete_export_re_hashes_its_tree(
    catalog: Path, environ: dict[str, str], tmp_path: Path, tamper: str
) -> None:
    """A leaf or header value changed in an export line fails its hashes, by name."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, policies=[ALUMNI], as_of=AS_OF)
        api.export(ws, tmp_path / "all.jsonl")
    lines = (tmp_path / "all.jsonl").read_text(encoding="utf-8").splitlines()
    cert = json.loads(lines[1])
    if tamper == "leaf":
        cert["expires_on"] = "2019-06-01"
    else:
        cert["legal_basis"] = "none"
    lines[1] = canonical(cert).decode()
    (tmp_path / "all.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = api.verify_file(tmp_path / "all.jsonl", catalog / "keys" / "signing.pub.pem")
    named = "its leaf does not match" if tamper == "leaf" else "its batch header does not match"
    assert any(named in f for f in report.faults), report.faults


def test_an_export_made_before_the_tree_still_verifies_by_the_chain(tmp_path: Path) -> None:
    """A `retention-certificates/1` export of chained certificates, as the versions before
    revision 0009 wrote it, verifies as it did; a changed line still fails."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from retention.evidence.certificate import seal
    from retention.evidence.export import manifest_path

    key = Ed25519PrivateKey.generate()
    public = tmp_path / "key.pem"
    public.write_text(signing.public_pem(key.public_key()))
    previous = "0" * 64
    lines = []
    for seq in (1, 2, 3):
        cert = seal({
            "certificate_id": f"00000000-0000-7000-8000-00000000000{seq}", "run_id": "R1",
            "plan_id": "P1", "approved_by": None, "register": "r", "policy": "p",
            "policy_sha256": "a" * 64, "record_ref": f"{seq:064x}", "action": "deleted",
            "reason": "retention", "fields": [], "archive": None, "trigger_date": "2019-05-31",
            "expires_on": "2019-05-31", "executed_at": "2026-11-22T00:00:00+00:00",
            "verified": True, "legal_basis": None}, seq, previous)  # fmt: skip
        previous = cert["hash"]
        lines.append(canonical(cert).decode())
    export = tmp_path / "old.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    checkpoint = {"run_id": "R1", "first_seq": 1, "last_seq": 3, "count": 3,
                  "last_hash": previous, "signed_at": "2026-11-22T00:00:01+00:00",
                  "key_id": signing.key_id(key.public_key())}  # fmt: skip
    checkpoint["signature"] = signing.sign(key, canonical(checkpoint))
    manifest = {
        "format": "retention-certificates/1", "file": export.name,
        "sha256": __import__("hashlib").sha256(export.read_bytes()).hexdigest(), "count": 3,
        "first_hash": json.loads(lines[0])["hash"], "last_hash": previous, "last_seq": 3,
        "since": None, "until": None, "register": None, "exported_at": "2026-11-23T00:00:00",
        "checkpoints": [checkpoint], "key_id": signing.key_id(key.public_key()),
    }  # fmt: skip
    manifest["signature"] = signing.sign(key, canonical(manifest))
    manifest_path(export).write_text(json.dumps(manifest), encoding="utf-8")
    report = api.verify_file(export, public)
    assert report.ok, report.faults
    assert report.certificates == 3
    lines[1] = lines[1].replace('"verified":true', '"verified":false')
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest["sha256"] = __import__("hashlib").sha256(export.read_bytes()).hexdigest()
    del manifest["signature"]
    manifest["signature"] = signing.sign(key, canonical(manifest))
    manifest_path(export).write_text(json.dumps(manifest), encoding="utf-8")
    faults = api.verify_file(export, public).faults
    assert any("(seq 2): its content does not match its hash" in f for f in faults), faults


def test_proofs_over_many_batches_use_the_stored_subtrees(tmp_path: Path) -> None:
    """Proofs composed from the subtrees batches stored are RFC 9162's paths re-hashed from
    every leaf, and verify against the signed root."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from retention.evidence.certificate import new_certificate_id
    from retention.evidence.ledger import Ledger
    from retention.evidence.proof import make_proof
    from retention.state.database import ledger_nodes, open_state, runs

    engine = open_state(f"sqlite:///{tmp_path / 'state.db'}", create=True)
    key = Ed25519PrivateKey.generate()
    shared = {"run_id": "R1", "plan_id": "P1", "approved_by": None, "register": "r",
              "policy": "p", "policy_sha256": "a" * 64, "action": "deleted",
              "reason": "retention", "fields": [], "archive": None,
              "legal_basis": None}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(runs.insert().values(run_id="R1", plan_id="P1",
                                          started_at=sa.func.now(), status="running"))  # fmt: skip
    total = 0
    for size in (300, 1, 455, 250):  # batches that end off every power of two
        with engine.begin() as conn:
            Ledger.append(conn, [
                {**shared, "certificate_id": new_certificate_id(), "record_ref": f"{i:064x}",
                 "fingerprint": None, "trigger_date": None, "expires_on": "2019-01-01",
                 "executed_at": "2026-11-22T00:00:00+00:00", "verified": True}
                for i in range(total, total + size)
            ])  # fmt: skip
        total += size
    Ledger(engine).checkpoint("R1", key)
    with engine.connect() as conn:
        levels = sorted(conn.scalars(sa.select(ledger_nodes.c.level)))
    assert levels == [8, 8, 8, 9]  # of 1006 leaves: 0-767 in threes of 256, and 0-511
    every = list(leaf_hashes(engine, total))
    seqs = [1, 256, 257, 700, 1000, total]
    proof = make_proof(engine, seqs)
    root = note.parse(proof["checkpoint"]).root
    assert root == merkle.root(every)
    for seq, entry in zip(seqs, proof["certificates"], strict=True):
        path = [base64.b64decode(p) for p in entry["inclusion_path"]]
        assert path == merkle.inclusion_proof(every, seq - 1)
        assert merkle.verify_inclusion(every[seq - 1], seq - 1, total, path, root)
    engine.dispose()
