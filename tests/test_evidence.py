"""Evidence that cannot be forged or thinned by someone who can write to the state database
but does not hold the private signing key — on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from retention import api
from retention.errors import LedgerError
from retention.evidence import keyring, signing
from retention.evidence.certificate import canonical, new_certificate_id
from retention.evidence.ledger import Ledger
from retention.state.database import certificates, checkpoints, ledger_head, runs, signing_keys
from retention.workspace import Workspace
from tests.conftest import AS_OF

ALUMNI = "xamk-alumni/alumni-membership"
INTERVIEWEES = "amkoodari/interviewees"


def _last_body(ws: Workspace) -> dict[str, Any]:
    """The last certificate as users read it (its leaf joined with its batch header)."""
    *_, body = ws.ledger.iter_certificates()
    return dict(body)


def _forge_tail(ws: Workspace, run_id: str) -> str:
    """Append a correctly hashed certificate, as anyone with write access could."""
    body = _last_body(ws)
    for name in ("seq", "header", "hash"):
        body.pop(name)
    body.update(certificate_id=new_certificate_id(), run_id=run_id, record_ref="f" * 64)
    with ws.state.begin() as conn:
        Ledger.append(conn, [body])
    return str(body["certificate_id"])


def _checkpoint_count(ws: Workspace) -> int:
    with ws.state.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(checkpoints)) or 0)


@pytest.mark.parametrize("owner", ["finished", "unknown", "made-up-running"])
def test_a_certificate_appended_after_the_last_checkpoint_is_never_signed(
    catalog: Path, environ: dict[str, str], owner: str
) -> None:
    """The next run refuses to sign certificates no run of the engine accounts for: of a run
    that already finished and signed its own, of no run at all, or of a `runs` row made up
    without the key (its start is unsigned). verify names them."""
    with Workspace.open(catalog, environ) as ws:
        first = api.run(ws, policies=[ALUMNI], as_of=AS_OF)
        run_id = {"finished": first.run_id, "unknown": "R-forged"}.get(owner, "R-made-up")
        if owner == "made-up-running":
            with ws.state.begin() as conn:
                conn.execute(runs.insert().values(
                    run_id=run_id, plan_id="P-made-up", started_at=sa.func.now(),
                    status="running",
                ))  # fmt: skip
        _forge_tail(ws, run_id)
        signed = _checkpoint_count(ws)
        with pytest.raises(LedgerError, match=f"refuses to sign.*run {run_id}"):
            api.run(ws, policies=[INTERVIEWEES], as_of=AS_OF)
        assert _checkpoint_count(ws) == signed  # nothing signed over the forgery
        with ws.state.connect() as conn:
            status = conn.execute(
                sa.select(runs.c.status, runs.c.finished_at)
                .where(runs.c.run_id != first.run_id, runs.c.run_id != run_id)
            ).one()  # fmt: skip
        assert status.status == "failed" and status.finished_at is not None
        report = api.verify_ledger(ws)
    assert not report.ok
    assert any(run_id in fault for fault in report.faults), report.faults


@pytest.mark.parametrize(
    "column", ["record_ref", "run_id", "register", "policy", "certificate_id", "hash",
               "executed_at", "action", "fingerprint"],
)  # fmt: skip
def test_every_indexed_column_is_checked_against_the_signed_body(
    catalog: Path, environ: dict[str, str], column: str
) -> None:
    """Changing an indexed column (the one `done` and exports query) is a verify failure:
    pointing an old certificate's record_ref at an overdue record no longer passes."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        assert api.verify_ledger(ws).ok
        with ws.state.begin() as conn:
            row = conn.execute(sa.select(certificates).where(certificates.c.seq == 2)).one()
            value: Any = row._mapping[column]
            if column == "executed_at":
                value = value.replace(year=value.year - 1)
            elif column == "certificate_id":
                value = new_certificate_id()
            elif column == "fingerprint":
                value = None  # blanked: its record would be done by its reference alone
            else:
                value = ("0" if column in ("record_ref", "hash") else "x") * len(value)
            conn.execute(
                sa.update(certificates).where(certificates.c.seq == 2).values({column: value})
            )
        report = api.verify_ledger(ws)
    assert not report.ok
    assert any(f"its {column} column" in fault for fault in report.faults), report.faults


def test_removing_the_last_run_is_found_through_its_disposed_count(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Deleting the last run's certificates and checkpoint and resetting the ledger head
    leaves a consistent chain, but `runs` still says what that run disposed of."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, policies=[ALUMNI], as_of=AS_OF)
        second = api.run(ws, policies=[INTERVIEWEES], as_of=AS_OF)
        assert second.disposed == 3 and api.verify_ledger(ws).ok
        with ws.state.begin() as conn:
            conn.execute(sa.delete(certificates).where(certificates.c.run_id == second.run_id))
            conn.execute(sa.delete(checkpoints).where(checkpoints.c.run_id == second.run_id))
            seq, last = conn.execute(
                sa.select(certificates.c.seq, certificates.c.hash)
                .order_by(certificates.c.seq.desc()).limit(1)
            ).one()  # fmt: skip
            conn.execute(sa.update(ledger_head).values(last_seq=seq, last_hash=last))
        report = api.verify_ledger(ws)
    assert not report.ok
    assert any(
        f"run {second.run_id} finished having disposed of 3 records" in f and "thinned" in f
        for f in report.faults
    ), report.faults


def _resign_checkpoints(ws: Workspace, key: Ed25519PrivateKey) -> None:
    with ws.state.begin() as conn:
        for row in conn.execute(sa.select(checkpoints)).all():
            body = {**json.loads(row.body), "key_id": signing.key_id(key.public_key())}
            conn.execute(
                sa.update(checkpoints)
                .where(checkpoints.c.last_seq == row.last_seq)
                .values(body=canonical(body).decode(), signature=signing.sign(key, canonical(body)))
            )


def test_checkpoints_re_signed_with_another_key_fail_verification(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """Re-signing every checkpoint with a new key pair fails: with that pair's public key
    (not the pinned key), and even with the pin replaced too (the catalog's own key is not
    in the chain)."""
    attacker = Ed25519PrivateKey.generate()
    theirs = tmp_path / "theirs.pub.pem"
    theirs.write_text(signing.public_pem(attacker.public_key()))
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        pinned = signing.key_id(ws.signing_key().public_key())
        _resign_checkpoints(ws, attacker)
        report = api.verify_ledger(ws, theirs)
        assert not report.ok
        assert report.pinned_key_id == pinned
        assert any(f"not the pinned key {pinned}" in f for f in report.faults), report.faults
        with ws.state.begin() as conn:  # now the pin as well
            conn.execute(sa.delete(signing_keys))
        keyring.pin(ws.state, attacker)
        ws.public_key_path.write_text(signing.public_pem(attacker.public_key()))
        report = api.verify_ledger(ws, theirs)
    assert not report.ok
    own = signing.key_id(signing.load_private(catalog / "keys" / "signing.pem").public_key())
    assert any(f"public key {own} is not the pinned key" in f for f in report.faults)


def _cli(*args: str | Path, cwd: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retention", *map(str, args)], cwd=cwd, env=environ,
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_a_key_is_changed_by_a_signed_rotation_only(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """`retention key rotate` keeps the ledger and new exports verifiable and says which key
    signed; a replacement the old key did not sign is refused by runs and by verify."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, policies=[ALUMNI], as_of=AS_OF)
        old = signing.key_id(ws.signing_key().public_key())
    old_pub = tmp_path / "old.pub.pem"
    old_pub.write_bytes((catalog / "keys" / "signing.pub.pem").read_bytes())
    rotated = _cli("key", "rotate", "--catalog", catalog, cwd=tmp_path, environ=environ)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert (catalog / "keys" / f"signing.{old}.pem").exists()
    out = tmp_path / "certs.jsonl"
    with Workspace.open(catalog, environ) as ws:
        new = signing.key_id(ws.signing_key().public_key())
        assert new != old and f"{old} -> {new}" in rotated.stdout
        second = api.run(ws, policies=[INTERVIEWEES], as_of=AS_OF)
        assert second.checkpoint is not None and second.checkpoint["key_id"] == new
        report = api.verify_ledger(ws)
        assert report.ok, report.faults
        assert report.keys == [old, new] and report.pinned_key_id == old
        manifest = api.export(ws, out)
    assert manifest["pinned_key_id"] == old and manifest["key_id"] == new
    ledger = _cli("verify", "--catalog", catalog, cwd=tmp_path, environ=environ)
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
    assert f"pinned key {old} rotated 1x to {new}" in ledger.stdout
    assert f"last checkpoint: seq {manifest['last_seq']}, hash {manifest['last_hash']}" in (
        ledger.stdout
    )
    offline = api.verify_file(out, catalog / "keys" / "signing.pub.pem")
    assert offline.ok, offline.faults
    assert (offline.key_id, offline.pinned_key_id) == (new, old)
    cli = _cli("verify", out, "--public-key", catalog / "keys" / "signing.pub.pem",
               cwd=tmp_path, environ=environ)  # fmt: skip
    assert cli.returncode == 0 and f"signed by key {new} (pinned key {old})" in cli.stdout
    # An auditor holding only the pinned key follows the rotation the manifest carries.
    pinned_only = api.verify_file(out, old_pub)
    assert pinned_only.ok, pinned_only.faults
    assert (pinned_only.key_id, pinned_only.pinned_key_id) == (new, old)

    # An unsigned replacement: a new pair recorded as the successor without the old key.
    attacker = Ed25519PrivateKey.generate()
    statement = {"kind": "rotation", "key_id": signing.key_id(attacker.public_key()),
                 "public_key": signing.public_pem(attacker.public_key()), "previous": new,
                 "ledger_seq": 0, "made_at": "2026-12-07T00:00:00+00:00"}  # fmt: skip
    with Workspace.open(catalog, environ) as ws:
        with ws.state.begin() as conn:
            conn.execute(signing_keys.insert().values(
                key_id=statement["key_id"], public_key=statement["public_key"], previous=new,
                statement=canonical(statement).decode(), made_at=sa.func.now(),
                signature=signing.sign(attacker, canonical(statement)),
                previous_signature=signing.sign(attacker, canonical(statement)),
            ))  # fmt: skip
        _resign_checkpoints(ws, attacker)
        report = api.verify_ledger(ws)
        assert not report.ok
        assert any("unsigned replacement" in f for f in report.faults), report.faults
        with pytest.raises(LedgerError, match="do not verify"):
            api.run(ws, policies=[ALUMNI], as_of=AS_OF)


def test_a_ledger_written_before_key_pinning_verifies_and_is_pinned(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A ledger from the previous version (no pin, checkpoints without their runs, runs
    without a signed start) verifies after the upgrade, pinning the key on first use."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, policies=[ALUMNI], as_of=AS_OF)
        key = ws.signing_key()
        with ws.state.begin() as conn:
            conn.execute(sa.delete(signing_keys))
            conn.execute(sa.update(runs).values(signature=None))
            for row in conn.execute(sa.select(checkpoints)).all():
                body = {k: v for k, v in json.loads(row.body).items() if k != "runs"}
                conn.execute(
                    sa.update(checkpoints)
                    .where(checkpoints.c.last_seq == row.last_seq)
                    .values(
                        body=canonical(body).decode(), signature=signing.sign(key, canonical(body))
                    )
                )
        assert keyring.load(ws.state).pinned is None
        report = api.verify_ledger(ws)
        assert report.ok, report.faults
        assert report.pinned_key_id == signing.key_id(key.public_key())
        api.run(ws, policies=[INTERVIEWEES], as_of=AS_OF)
        assert api.verify_ledger(ws).ok


def test_an_export_re_signed_with_another_key_fails_offline(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """The manifest records the pinned key: an export whose manifest and checkpoints someone
    re-signed with a key pair of their own fails with that pair's public key, naming it."""
    out = tmp_path / "certs.jsonl"
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        manifest = api.export(ws, out)
        pinned = signing.key_id(ws.signing_key().public_key())
    assert manifest["pinned_key_id"] == pinned == manifest["key_id"]
    attacker = Ed25519PrivateKey.generate()
    theirs = tmp_path / "theirs.pub.pem"
    theirs.write_text(signing.public_pem(attacker.public_key()))
    forged = {k: v for k, v in manifest.items() if k != "signature"}
    for cp in forged["checkpoints"]:
        cp["key_id"] = signing.key_id(attacker.public_key())
        cp["signature"] = signing.sign(
            attacker, canonical({k: v for k, v in cp.items() if k != "signature"})
        )
    forged["key_id"] = signing.key_id(attacker.public_key())
    forged["signature"] = signing.sign(attacker, canonical(forged))
    (tmp_path / "certs.jsonl.manifest.json").write_text(json.dumps(forged))
    report = api.verify_file(out, theirs)
    assert not report.ok and report.pinned_key_id == pinned
    theirs_id = signing.key_id(attacker.public_key())
    assert any(f"public key {theirs_id} is not the pinned key {pinned}" in f
               for f in report.faults), report.faults  # fmt: skip
    cli = _cli("verify", out, "--public-key", theirs, cwd=tmp_path, environ=environ)
    assert cli.returncode == 1 and f"(pinned key {pinned})" in cli.stdout


def test_init_pins_the_key_and_warns_about_another(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """`retention init` prints the pinned key id; with a different key file in place it
    warns, and a run refuses before disposing of anything."""
    first = _cli("init", "--catalog", catalog, cwd=tmp_path, environ=environ)
    pinned = signing.key_id(signing.load_private(catalog / "keys" / "signing.pem").public_key())
    assert first.returncode == 0 and f"pinned key id: {pinned}" in first.stdout
    for name in ("signing.pem", "signing.pub.pem"):
        (catalog / "keys" / name).unlink()
    again = _cli("init", "--catalog", catalog, cwd=tmp_path, environ=environ)
    assert again.returncode == 0 and f"pinned key id: {pinned}" in again.stdout
    assert "WARNING" in again.stdout and "is not the pinned key" in again.stdout
    with Workspace.open(catalog, environ) as ws:
        with pytest.raises(LedgerError, match=f"not the pinned key {pinned}"):
            api.run(ws, as_of=AS_OF)
        with ws.state.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(certificates)) == 0


def test_intents_a_finished_run_left_are_certified_and_signed_by_the_next_run(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy that failed between its change and the re-read leaves intents behind in a run
    that then finishes (partial). The next run certifies them as its own, signs them, and the
    disposed counts still add up."""
    from retention.connectors.sql import SqlConnector
    from retention.errors import SourceUnavailable

    original = SqlConnector.reread
    calls = [0]

    def lose_the_first_reread(self: SqlConnector, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise SourceUnavailable("connector crm: the connection was lost")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SqlConnector, "reread", lose_the_first_reread)
    with Workspace.open(catalog, environ) as ws:
        first = api.run(ws, policies=[ALUMNI], as_of=AS_OF)
        assert first.policies[0].status == "failed" and first.disposed == 0
        monkeypatch.setattr(SqlConnector, "reread", original)
        second = api.run(ws, policies=[ALUMNI], as_of=AS_OF)
        assert second.reconciled == 2 and second.checkpoint is not None
        certs = list(ws.ledger.iter_certificates())
        report = api.verify_ledger(ws)
    assert report.ok, report.faults
    assert len(certs) == 3 and {c["run_id"] for c in certs} == {second.run_id}
