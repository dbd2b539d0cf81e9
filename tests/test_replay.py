"""Replay after a restore from a backup: records certified as disposed of that came back are
disposed of again, with certificates naming the ones they repeat, on every backend."""

from __future__ import annotations

import csv
import json
import shutil
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.errors import UsageError
from retention.evidence import signing
from retention.evidence.certificate import ChainVerifier, canonical, seal
from retention.evidence.export import manifest_path
from retention.state.database import certificates, intents, runs
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET
from tests.test_cli import PERSONAL, explain, make_catalog, on
from tests.test_engine import ledger, source_rows

Rows = dict[str, list[dict[str, Any]]]
KEYS = {"alumni": ("id",), "contracts": ("site", "case_no"), "interviewees": ("id",)}


def key_of(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in KEYS[table])


def restore(
    ws: Workspace, backup: Rows, only: dict[str, set[tuple[Any, ...]]] | None = None
) -> None:
    """Put rows of ``backup`` back as a restore would: re-insert deleted rows and overwrite
    changed ones with their backed-up values (only the keys in ``only``, if given)."""
    engine = ws.connector("crm").engine  # type: ignore[attr-defined]
    md = sa.MetaData()
    md.reflect(engine, only=list(KEYS))
    now = source_rows(ws)
    with engine.begin() as conn:
        for name, saved in backup.items():
            t = md.tables[name]
            present = {key_of(name, r): r for r in now[name]}
            for row in saved:
                key = key_of(name, row)
                if only is not None and key not in only.get(name, set()):
                    continue
                if key not in present:
                    conn.execute(t.insert().values(row))
                elif present[key] != row:
                    where = [t.c[c] == v for c, v in zip(KEYS[name], key, strict=True)]
                    conn.execute(sa.update(t).where(*where).values(row))


def since_of(certs: list[dict[str, Any]]) -> date:
    """The UTC day the first certificate was executed: a --since that covers the run."""
    return date.fromisoformat(certs[0]["executed_at"][:10])


def by_policy(outcome: api.ReplayOutcome) -> dict[str, Any]:
    return {p.policy: p for p in outcome.policies}


def test_replay_disposes_of_exactly_the_restored_records(
    catalog: Path, environ: dict[str, str]
) -> None:
    """After a partial restore, replay deletes and anonymises exactly the records that came
    back, leaves the source as the run left it, and its certificates replace the originals."""
    with Workspace.open(catalog, environ) as ws:
        backup = source_rows(ws)
        api.run(ws, as_of=AS_OF)
        after_run = source_rows(ws)
        originals = ledger(ws)
        restore(ws, backup, {
            "alumni": {(1,), (6,)}, "contracts": {("B", "C-1")}, "interviewees": {(2,)},
        })  # fmt: skip
        restored = source_rows(ws)
        outcome = api.replay(ws, since_of(originals))
        after_replay = source_rows(ws)
        certs = ledger(ws)
        assert api.verify_ledger(ws).ok
    assert [r["first_name"] for r in restored["alumni"] if r["id"] in (1, 6)] == ["Aino", "Lumi"]
    assert outcome.exit_code == 0 and outcome.run is not None
    assert after_replay == after_run
    found = by_policy(outcome)
    assert {name: (p.counts.restored, p.disposed, p.counts.still_disposed)
            for name, p in found.items()} == {
        "alumni-membership": (2, 2, 1), "customer-contracts": (1, 1, 1),
        "project-contracts": (0, 0, 1), "interviewees": (1, 1, 2),
    }  # fmt: skip
    assert found["alumni-membership"].counts.scanned == 5
    new = certs[len(originals) :]
    assert len(new) == 4
    original_by_ref = {(c["policy"], c["record_ref"]): c for c in originals}
    for cert in new:
        replaced = original_by_ref[(cert["policy"], cert["record_ref"])]
        assert cert["replaces"] == replaced["certificate_id"]
        assert cert["reason"] == "replay" and cert["verified"] is True
        assert cert["action"] == replaced["action"] and cert["run_id"] == outcome.run.run_id
    assert all("replaces" not in c for c in originals)


def test_dry_run_lists_the_restored_records_and_changes_nothing(
    catalog: Path, environ: dict[str, str]
) -> None:
    """--dry-run names each restored record by key and reference and writes nothing anywhere:
    no source row, no certificate, no intent, no run."""
    with Workspace.open(catalog, environ) as ws:
        backup = source_rows(ws)
        api.run(ws, as_of=AS_OF)
        originals = ledger(ws)
        restore(ws, backup)
        restored = source_rows(ws)

        def state() -> tuple[int, ...]:
            with ws.state.connect() as conn:
                return tuple(
                    int(conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0)
                    for t in (certificates, intents, runs)
                )

        before = state()
        outcome = api.replay(ws, since_of(originals), dry_run=True)
        assert source_rows(ws) == restored and state() == before
    assert outcome.run is None and outcome.exit_code == 0
    alumni = by_policy(outcome)["alumni-membership"]
    assert [(r.key, r.decision) for r in alumni.records] == [
        ('["1"]', "expire"), ('["2"]', "expire"), ('["6"]', "expire"),
    ]  # fmt: skip
    replaced = {c["record_ref"]: c["certificate_id"] for c in originals}
    assert all(replaced[r.record_ref] == r.replaces for r in alumni.records)
    contracts = by_policy(outcome)["customer-contracts"]
    assert [r.key for r in contracts.records] == ['["B","C-1"]', '["HQ","C-1"]']
    assert sum(p.counts.restored for p in outcome.policies) == len(originals) == 9


def test_since_after_the_run_finds_nothing(
    catalog: Path, environ: dict[str, str], backend: str
) -> None:
    """Certificates executed before --since are not looked at: a run on 22 November 2026 is
    not replayed from 23 November, and is from 22 November."""
    from freezegun import freeze_time

    with Workspace.open(catalog, environ) as ws:
        backup = source_rows(ws)
        with freeze_time("2026-11-22 10:00:00"):
            api.run(ws, as_of=AS_OF)
        restore(ws, backup)
        restored = source_rows(ws)
        later = api.replay(ws, date(2026, 11, 23))
        assert source_rows(ws) == restored
        assert later.run is not None and later.run.disposed == 0
        assert all(p.counts.certified == p.counts.restored == 0 for p in later.policies)
        covering = api.replay(ws, date(2026, 11, 22), dry_run=True)
    assert sum(p.counts.restored for p in covering.policies) == 9


def test_a_hold_wins_over_replay(catalog: Path, environ: dict[str, str]) -> None:
    """A restored record under a hold is reported held and kept; released, the next replay
    disposes of it."""
    with Workspace.open(catalog, environ) as ws:
        backup = source_rows(ws)
        api.run(ws, as_of=AS_OF)
        since = since_of(ledger(ws))
        restore(ws, backup, {"alumni": {(1,), (2,)}})
        hold = api.place_hold(ws, reason="court order", placed_by="dpo",
                              policy="alumni-membership", record=["1"]).hold  # fmt: skip
        outcome = api.replay(ws, since)
        rows = {r["id"]: r for r in source_rows(ws)["alumni"]}
        assert rows[1]["first_name"] == "Aino" and rows[2]["first_name"] is None
        alumni = by_policy(outcome)["alumni-membership"]
        assert (alumni.counts.restored, alumni.counts.held, alumni.disposed) == (2, 1, 1)
        ws.holds.release(hold.hold_id, "dpo")
        again = api.replay(ws, since)
        rows = {r["id"]: r for r in source_rows(ws)["alumni"]}
    assert rows[1]["first_name"] is None
    alumni = by_policy(again)["alumni-membership"]
    assert (alumni.counts.restored, alumni.counts.held, alumni.disposed) == (1, 0, 1)


def test_replaying_again_does_nothing_more(catalog: Path, environ: dict[str, str]) -> None:
    """The replay's own certificates are after --since too, but the records they certify are
    gone or anonymised: a second replay finds them still disposed and writes nothing."""
    with Workspace.open(catalog, environ) as ws:
        backup = source_rows(ws)
        api.run(ws, as_of=AS_OF)
        since = since_of(ledger(ws))
        restore(ws, backup)
        api.replay(ws, since)
        disposed = source_rows(ws)
        count = len(ledger(ws))
        second = api.replay(ws, since)
        assert source_rows(ws) == disposed and len(ledger(ws)) == count == 18
        assert api.verify_ledger(ws).ok
    assert second.run is not None and second.run.disposed == 0
    assert {p.policy: (p.counts.restored, p.counts.still_disposed) for p in second.policies} == {
        "alumni-membership": (0, 3), "customer-contracts": (0, 2),
        "project-contracts": (0, 1), "interviewees": (0, 3),
    }  # fmt: skip


def test_an_erasure_certificate_replays(catalog: Path, environ: dict[str, str]) -> None:
    """A person who asked for erasure is erased again after a restore, though not yet due."""
    with Workspace.open(catalog, environ) as ws:
        backup = source_rows(ws)
        api.erase(ws, "030392-902C", as_of=AS_OF)
        (erased,) = ledger(ws)
        restore(ws, backup)
        outcome = api.replay(ws, since_of([erased]))
        rows = {r["id"]: r for r in source_rows(ws)["alumni"]}
        certs = ledger(ws)
    assert erased["reason"] == "erasure-request"
    assert rows[3]["first_name"] is None and rows[3]["email"] is None
    assert rows[1]["first_name"] == "Aino"  # due, but never certified: a normal run's work
    assert outcome.run is not None and outcome.run.disposed == 1
    assert certs[1]["replaces"] == erased["certificate_id"] and certs[1]["reason"] == "replay"


def test_a_valve_stops_a_replay_that_would_take_too_many(
    catalog: Path, environ: dict[str, str]
) -> None:
    """max_per_run bounds a replay as it bounds a run: more restored than that, nothing done."""
    with Workspace.open(catalog, environ) as ws:
        backup = source_rows(ws)
        api.run(ws, as_of=AS_OF)
        since = since_of(ledger(ws))
        restore(ws, backup)
    policies = catalog / "policies" / "xamk.yaml"
    policies.write_text(policies.read_text().replace("max_per_run: 100", "max_per_run: 2"))
    with Workspace.open(catalog, environ) as ws:
        restored = source_rows(ws)
        outcome = api.replay(ws, since, policies=["alumni-membership"])
        assert source_rows(ws) == restored
    assert outcome.exit_code == 3
    assert by_policy(outcome)["alumni-membership"].status == "stopped"


def test_bad_arguments_are_refused(catalog: Path, environ: dict[str, str]) -> None:
    """A --since after today or a --policy with nothing to replay is a usage error."""
    with Workspace.open(catalog, environ) as ws:
        with pytest.raises(UsageError, match="--since 2999-01-01 is after today"):
            api.replay(ws, date(2999, 1, 1))
        with pytest.raises(UsageError, match="no policy matches 'nope'"):
            api.replay(ws, AS_OF, policies=["nope"])


# --- the command line ----------------------------------------------------------------------


def test_cli_dry_run_then_replay_with_exit_codes(tmp_path: Path) -> None:
    """`replay --dry-run` lists keys (never values) and exits 0 changing nothing; `replay`
    exits 0; bad arguments exit 2; a tripped valve exits 3."""
    sq = make_catalog(tmp_path / "sq")
    backup = tmp_path / "backup.db"
    shutil.copyfile(sq.source, backup)
    assert on(sq, "run", "--as-of", AS_OF.isoformat()).returncode == 0
    shutil.copyfile(backup, sq.source)  # the restore
    with Workspace.open(sq.root, {"RETENTION_SECRET": SECRET}) as ws:
        since = since_of(ledger(ws)).isoformat()

    dry = on(sq, "replay", "--since", since, "--dry-run")
    assert dry.returncode == 0, explain(dry)
    assert backup.read_bytes() == sq.source.read_bytes()
    assert '["HQ","C-1"]' in dry.stdout and "would dispose of again" in dry.stdout
    assert not [v for v in PERSONAL if v in dry.stdout + dry.stderr]

    assert on(sq, "replay").returncode == 2  # --since is required
    assert on(sq, "replay", "--since", "2026-13-01").returncode == 2
    future = on(sq, "replay", "--since", "2999-01-01")
    assert future.returncode == 2 and "after today" in future.stderr
    review = on(sq, "replay", "--since", since, "--policy", "nope")
    assert review.returncode == 2 and "no policy matches" in review.stderr

    policies = sq.root / "policies" / "xamk.yaml"
    text = policies.read_text()
    policies.write_text(text.replace("max_per_run: 100", "max_per_run: 1"))
    stopped = on(sq, "replay", "--since", since, "--policy", "alumni-membership")
    assert stopped.returncode == 3, explain(stopped)
    policies.write_text(text)

    done = on(sq, "replay", "--since", since)
    assert done.returncode == 0, explain(done)
    assert "disposed of 9 records again" in done.stdout
    assert not [v for v in PERSONAL if v in done.stdout + done.stderr]
    assert on(sq, "verify").returncode == 0


def test_cli_refuses_a_policy_that_disposes_of_nothing(tmp_path: Path) -> None:
    """A --policy naming only a review policy has nothing to replay: exit 2 saying so."""
    sq = make_catalog(tmp_path / "sq")
    policies = sq.root / "policies" / "amkoodari.yaml"
    policies.write_text(policies.read_text().replace("action: delete", "action: review"))
    proc = on(sq, "replay", "--since", AS_OF.isoformat(), "--policy", "interviewees")
    assert proc.returncode == 2, explain(proc)
    assert "nothing to replay" in proc.stderr


# --- certificates: the optional replaces field ----------------------------------------------


def test_replay_certificates_export_and_verify_as_csv_beside_older_ones(
    tmp_path: Path,
) -> None:
    """A CSV export carries `replaces` for replay certificates and leaves it empty for others;
    both verify, and so does an export written before the column existed."""
    sq = make_catalog(tmp_path / "sq")
    backup = tmp_path / "backup.db"
    shutil.copyfile(sq.source, backup)
    assert on(sq, "run", "--as-of", AS_OF.isoformat()).returncode == 0
    shutil.copyfile(backup, sq.source)
    with Workspace.open(sq.root, {"RETENTION_SECRET": SECRET}) as ws:
        api.replay(ws, since_of(ledger(ws)))
        out = tmp_path / "certs.csv"
        api.export(ws, out)
        key = ws.signing_key()
        pub = ws.public_key_path
    with out.open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [bool(r["replaces"]) for r in table] == [False] * 9 + [True] * 9
    assert api.verify_file(out, pub).ok

    # The same export as an engine without the column wrote it: no `replaces` column, and
    # only the certificates before the replay, re-signed.
    old = tmp_path / "old.csv"
    with old.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, [c for c in table[0] if c != "replaces"])
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if k != "replaces"} for r in table[:9])
    manifest = json.loads(manifest_path(out).read_text())
    manifest.update(file=old.name, count=9, last_hash=table[8]["hash"], last_seq=9,
                    sha256=__import__("hashlib").sha256(old.read_bytes()).hexdigest())  # fmt: skip
    manifest["checkpoints"] = manifest["checkpoints"][:1]
    del manifest["signature"]
    manifest["signature"] = signing.sign(key, canonical(manifest))
    manifest_path(old).write_text(json.dumps(manifest))
    report = api.verify_file(old, pub)
    assert report.ok, report.faults

    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    rows[-1][rows[0].index("replaces")] = ""  # the last certificate's replaces removed
    with out.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    assert any("altered" in f for f in api.verify_file(out, pub).faults)


def test_the_verifier_checks_replaces_only_when_present() -> None:
    """No `replaces`: no fault (every older certificate). Present: it must name a certificate
    and go with reason replay."""
    base = {"certificate_id": str(uuid.uuid4()), "run_id": "R", "plan_id": "P",
            "approved_by": None, "register": "r", "policy": "p", "policy_sha256": "0" * 64,
            "record_ref": "1" * 64, "action": "deleted", "reason": "retention", "fields": [],
            "archive": None, "trigger_date": None, "expires_on": None,
            "executed_at": "2026-11-22T00:00:00+00:00", "verified": True,
            "legal_basis": None}  # fmt: skip

    def faults(**extra: Any) -> list[str]:
        chain = ChainVerifier(None)
        chain.feed(seal({**base, **extra}, 1, "0" * 64))
        return chain.faults

    assert faults() == []
    assert faults(reason="replay", replaces=str(uuid.uuid4())) == []
    assert any("does not name a certificate" in f for f in faults(reason="replay", replaces="x"))
    assert any("reason is not replay" in f for f in faults(replaces=str(uuid.uuid4())))


# --- a file share -----------------------------------------------------------------------------


def test_a_restored_file_on_a_share_is_deleted_again(tmp_path: Path) -> None:
    """A recording deleted by a run and put back from a backup is deleted again with its
    sidecar; one never restored stays counted as still disposed."""
    from tests.test_files import put, write_catalog

    catalog = write_catalog(
        tmp_path, '    trigger: "sidecar:interviewed_on"\n    retain: P2Y\n    action: delete\n'
    )
    share = catalog / "share"
    written = datetime(2020, 3, 2, 12, 0)
    put(share, "interviews/2020/rec1.wav", {"interviewed_on": "2020-03-02"}, written)
    put(share, "interviews/2021/rec2.wav", {"interviewed_on": "2021-03-02"})
    put(share, "interviews/2026/rec3.wav", {"interviewed_on": "2026-01-10"})
    with Workspace.open(catalog, {"RETENTION_SECRET": SECRET}) as ws:
        assert api.run(ws, as_of=AS_OF).disposed == 2
        since = since_of(ledger(ws))
        # restored from a backup with its times, so the very file the certificate disposed of
        put(share, "interviews/2020/rec1.wav", {"interviewed_on": "2020-03-02"}, written)
        outcome = api.replay(ws, since)
        certs = ledger(ws)
        assert api.verify_ledger(ws).ok
    assert not (share / "interviews/2020/rec1.wav").exists()
    assert not (share / "interviews/2020/rec1.wav.json").exists()
    assert (share / "interviews/2026/rec3.wav").exists()
    (result,) = outcome.policies
    assert (result.counts.scanned, result.counts.restored, result.disposed) == (2, 1, 1)
    assert result.counts.still_disposed == 1
    assert certs[-1]["replaces"] == certs[0]["certificate_id"]
