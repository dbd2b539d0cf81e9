"""Plan, run and verify end to end, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from retention import api
from retention.enforce.anonymise import REDACTED
from retention.errors import EXIT_SAFETY_VALVE, EXIT_SUCCESS
from retention.state.database import certificates, intent_batches, intents
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET, write_catalog

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def source_rows(ws: Workspace) -> dict[str, list[dict[str, Any]]]:
    """Every row of every test table, typed by SQLAlchemy, for before/after comparisons."""
    engine = ws.connector("crm").engine  # type: ignore[attr-defined]
    md = sa.MetaData()
    md.reflect(engine, only=["alumni", "contracts", "interviewees"])
    out = {}
    with engine.connect() as conn:
        for name, table in md.tables.items():
            query = sa.select(table).order_by(*table.primary_key.columns)
            out[name] = [dict(r) for r in conn.execute(query).mappings()]
    return out


def ledger(ws: Workspace) -> list[dict[str, Any]]:
    return list(ws.ledger.iter_certificates())


def test_plan_decides_every_record_and_changes_nothing(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """A dry run reports exactly the due records by key, in SPEC §6 form, and alters no row."""
    with Workspace.open(catalog, environ) as ws:
        before = source_rows(ws)
        plan, report = api.plan(ws, as_of=AS_OF, report=tmp_path / "plan.json")
        assert source_rows(ws) == before
        assert ledger(ws) == []
    assert report is not None
    doc = json.loads(report.read_text())
    assert doc["plan_id"] == plan.plan_id and doc["as_of"] == "2026-11-22"
    by_policy = {p["policy"]: p for p in doc["policies"]}
    alumni = by_policy["alumni-membership"]
    assert alumni["counts"] == {"scanned": 5, "expire": 3, "retain": 2, "held": 0, "done": 0}
    # Listed in the order the source pages them (by an indexed trigger, else by key).
    records = {r["key"]: r for r in alumni["records"]}
    assert sorted(records) == ["1", "2", "6"]
    assert records["1"] == {
        "key": "1",
        "decision": "expire",
        "trigger_date": "2019-05-31",
        "expires_on": "2019-05-31",
        "hold": None,
        "reason": None,
    }
    # Row 6 is a secret person (turvakielto): key and decision only.
    assert records["6"] == {
        "key": "6",
        "decision": "expire",
        "trigger_date": None,
        "expires_on": None,
        "hold": None,
        "reason": None,
    }
    customer = by_policy["customer-contracts"]
    assert customer["counts"] == {"scanned": 3, "expire": 2, "retain": 1, "held": 0, "done": 0}
    assert sorted(r["key"] for r in customer["records"]) == [["B", "C-1"], ["HQ", "C-1"]]
    assert customer["records"][0]["expires_on"] == "2021-01-01"
    project = by_policy["project-contracts"]
    assert [r["key"] for r in project["records"]] == [["B", "C-3"]]
    assert project["records"][0]["expires_on"] == "2026-01-01"
    assert by_policy["interviewees"]["counts"]["expire"] == 3
    assert by_policy["interviewees"]["records"][0]["expires_on"] == "2022-07-01"


def test_run_disposes_due_records_and_certifies_each(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Due rows are anonymised or deleted, the rest untouched, one verified certificate each."""
    with Workspace.open(catalog, environ) as ws:
        before = source_rows(ws)
        outcome = api.run(ws, as_of=AS_OF)
        after = source_rows(ws)
        certs = ledger(ws)
        report = api.verify_ledger(ws)
    assert outcome.exit_code == EXIT_SUCCESS
    assert outcome.disposed == 3 + 2 + 1 + 3
    alumni = {r["id"]: r for r in after["alumni"]}
    for key in (1, 2, 6):
        row = alumni[key]
        assert row["first_name"] is None and row["email"] is None
        assert row["notes"] == REDACTED
        assert (row["birth_date"].month, row["birth_date"].day) == (1, 1)
        assert HEX64.match(row["person_id"])
        assert row["membership_ended_on"] == before["alumni"][key - 1]["membership_ended_on"]
    for key in (3, 4, 5):
        assert alumni[key] == before["alumni"][key - 1]
    assert [(r["site"], r["case_no"]) for r in after["contracts"]] == [("B", "C-2"), ("HQ", "C-2")]
    assert after["interviewees"] == []
    assert len(certs) == 9 and all(c["verified"] for c in certs)
    dated = [c for c in certs if c["policy"] == "alumni-membership" and c["trigger_date"]]
    assert len(dated) == 2  # the secret person's certificate carries no dates
    assert {c["action"] for c in certs if c["policy"] == "alumni-membership"} == {"anonymised"}
    assert certs[0]["fields"] == [] or certs[0]["fields"] == [
        "first_name",
        "email",
        "birth_date",
        "person_id",
        "notes",
    ]
    assert [c["seq"] for c in certs] == list(range(1, 10))
    assert report.ok and report.certificates == 9 and report.checkpoints == 1


def test_second_run_is_a_no_op(catalog: Path, environ: dict[str, str]) -> None:
    """Running again on the same day disposes of nothing and reports earlier work as done."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        rows, certs = source_rows(ws), ledger(ws)
        again = api.run(ws, as_of=AS_OF)
        assert source_rows(ws) == rows
        assert ledger(ws) == certs
    assert again.disposed == 0
    alumni = next(p for p in again.policies if p.policy == "alumni-membership")
    assert (alumni.counts.done, alumni.counts.expire) == (3, 0)


def test_safety_valve_stops_the_policy_and_changes_nothing(
    tmp_path: Path, source_db: Any, state_db: Any, environ: dict[str, str]
) -> None:
    """More due records than max_per_run: that policy stops untouched, the others run, exit 3."""
    from tests.conftest import build_sources

    build_sources(source_db.url)
    root = write_catalog(tmp_path / "c", source_db.url, state_db.url, max_alumni=2)
    with Workspace.open(root, environ) as ws:
        before = source_rows(ws)
        outcome = api.run(ws, as_of=AS_OF)
        after = source_rows(ws)
        certs = ledger(ws)
    assert outcome.exit_code == EXIT_SAFETY_VALVE
    stopped = next(p for p in outcome.policies if p.policy == "alumni-membership")
    assert stopped.status == "stopped" and stopped.counts.expire == 3
    assert "max_per_run is 2" in (stopped.message or "")
    assert after["alumni"] == before["alumni"]
    assert after["interviewees"] == []
    assert not any(c["policy"] == "alumni-membership" for c in certs)


@pytest.mark.parametrize("scope", ["subject", "record", "policy", "register"])
def test_hold_keeps_records_untouched(catalog: Path, environ: dict[str, str], scope: str) -> None:
    """A hold by subject, record key, policy or register makes due records `held`, not disposed."""
    with Workspace.open(catalog, environ) as ws:
        before = source_rows(ws)
        kwargs: dict[str, Any] = {
            "subject": {"subject": "010190-900A"},
            "record": {"register": "xamk-alumni", "policy": "alumni-membership", "record": ["1"]},
            "policy": {"register": "xamk-alumni", "policy": "alumni-membership"},
            "register": {"register": "xamk-alumni"},
        }[scope]
        hold = ws.holds.place(
            reason="litigation", placed_by="records manager", secret=ws.secret, **kwargs
        )
        outcome = api.run(ws, as_of=AS_OF)
        after = source_rows(ws)
    alumni = next(p for p in outcome.policies if p.policy == "alumni-membership")
    held_rows = [1] if scope in ("subject", "record") else [1, 2, 6]
    assert alumni.counts.held == len(held_rows)
    for key in held_rows:
        assert after["alumni"][key - 1] == before["alumni"][key - 1]
    assert hold.subject_ref is None or "010190" not in hold.subject_ref
    assert after["interviewees"] == []


def test_released_hold_no_longer_protects(catalog: Path, environ: dict[str, str]) -> None:
    """Releasing a hold is recorded and the next run disposes of the record."""
    with Workspace.open(catalog, environ) as ws:
        hold = ws.holds.place(
            reason="audit", placed_by="rm", secret=ws.secret, register="amkoodari"
        )
        first = api.run(ws, as_of=AS_OF)
        released = ws.holds.release(hold.hold_id, "rm")
        second = api.run(ws, as_of=AS_OF)
    assert next(p for p in first.policies if p.policy == "interviewees").counts.held == 3
    assert released.released_by == "rm" and released.released_at is not None
    assert next(p for p in second.policies if p.policy == "interviewees").disposed == 3


def test_tampered_certificate_fails_verification(catalog: Path, environ: dict[str, str]) -> None:
    """Altering one stored certificate makes `verify` name exactly that certificate."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        assert api.verify_ledger(ws).ok
        with ws.state.begin() as conn:
            row = conn.execute(sa.select(certificates).where(certificates.c.seq == 4)).one()
            body = json.loads(row.body)
            body["action"] = "archived"
            conn.execute(
                sa.update(certificates).where(certificates.c.seq == 4).values(body=json.dumps(body))
            )
        report = api.verify_ledger(ws)
    assert not report.ok
    assert any(body["certificate_id"] in f and "altered" in f for f in report.faults)


def test_removed_certificates_fail_verification(catalog: Path, environ: dict[str, str]) -> None:
    """Deleting the newest certificates is detected through the ledger head and checkpoint."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        with ws.state.begin() as conn:
            conn.execute(sa.delete(certificates).where(certificates.c.seq >= 8))
        report = api.verify_ledger(ws)
    assert not report.ok
    assert any("signed in a checkpoint but are missing" in f for f in report.faults)


def test_export_verifies_in_a_separate_process_with_only_the_public_key(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """An auditor's machine needs only the export, its manifest and the public key."""
    out = tmp_path / "audit" / "certs.jsonl"
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        manifest = api.export(ws, out)
        pub = ws.public_key_path.read_bytes()
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    (elsewhere / "key.pub.pem").write_bytes(pub)
    cmd = [
        sys.executable,
        "-m",
        "retention",
        "verify",
        str(out),
        "--public-key",
        str(elsewhere / "key.pub.pem"),
    ]
    ok = subprocess.run(cmd, cwd=elsewhere, capture_output=True, text=True, env={}, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert manifest["count"] == 9 and "verified export" in ok.stdout
    lines = out.read_text().splitlines()
    cert = json.loads(lines[2])
    cert["verified"] = False
    lines[2] = json.dumps(cert)
    out.write_text("\n".join(lines) + "\n")
    bad = subprocess.run(cmd, cwd=elsewhere, capture_output=True, text=True, env={}, check=False)
    assert bad.returncode == 1
    assert cert["certificate_id"] in bad.stdout


def test_record_changed_after_reading_is_left_alone(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record no longer due when the batch is applied is not changed and gets no certificate."""
    with Workspace.open(catalog, environ) as ws:
        connector = ws.connector("crm")
        original = connector.apply

        def apply_after_a_change(selection: Any, keys: Any, change: Any) -> int:
            if selection.table == "alumni":
                with connector.engine.begin() as conn:  # type: ignore[attr-defined]
                    conn.execute(
                        sa.text("UPDATE alumni SET membership_ended_on = :d WHERE id = 1"),
                        {"d": "2030-01-01"},
                    )
            return original(selection, keys, change)

        monkeypatch.setattr(connector, "apply", apply_after_a_change)
        outcome = api.run(ws, as_of=AS_OF)
        rows = {r["id"]: r for r in source_rows(ws)["alumni"]}
        certs = ledger(ws)
    alumni = next(p for p in outcome.policies if p.policy == "alumni-membership")
    assert alumni.disposed == 2 and alumni.unchanged == 1
    assert rows[1]["first_name"] == "Aino"
    assert len([c for c in certs if c["policy"] == "alumni-membership"]) == 2


def crash_before_certifying(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``interviewees`` (batch_size 2) and die between the first batch's source commit
    and its certificates, leaving that batch's intents; the ledger appends again after."""
    from retention.evidence.ledger import Ledger

    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "append", staticmethod(_die))
        with pytest.raises(KeyboardInterrupt):
            api.run(ws, policies=["interviewees"], as_of=AS_OF)


def _die(conn: Any, bodies: Any) -> Any:
    raise KeyboardInterrupt  # the process dies between source commit and certificate


def test_intents_in_the_per_record_form_of_earlier_versions_are_still_finished(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade must not strand what an older version's crashed run left: one intent row
    per record in ``intents``. They are re-read and certified like batch rows."""
    from retention.enforce.execute import _intent_entries

    with Workspace.open(catalog, environ) as ws:
        crash_before_certifying(ws, monkeypatch)
        with ws.state.begin() as conn:  # rewrite the batch as the older version stored it
            (batch,) = conn.execute(sa.select(intent_batches)).all()
            conn.execute(intents.insert(), [
                {"run_id": batch.run_id, "plan_id": batch.plan_id, "register": batch.register,
                 "policy": batch.policy, "record_ref": entry["record_ref"], "key": entry["key"],
                 "certificate": json.dumps(entry["certificate"]), "recheck": batch.recheck,
                 "attachments": None, "created_at": batch.created_at}
                for entry in _intent_entries(batch.intents)
            ])  # fmt: skip
            conn.execute(sa.delete(intent_batches))
        assert api.status(ws).pending_intents == {"amkoodari/interviewees": 2}
        outcome = api.run(ws, policies=["interviewees"], as_of=AS_OF)
        certs = ledger(ws)
        report = api.verify_ledger(ws)
        with ws.state.connect() as conn:
            left = conn.scalar(sa.select(sa.func.count()).select_from(intents))
    assert outcome.reconciled == 2 and outcome.disposed == 1
    assert len(certs) == len({c["record_ref"] for c in certs}) == 3
    assert left == 0 and report.ok


def test_intent_rows_holding_whole_certificates_per_record_are_still_finished(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch rows written before shared certificate fields were stored once hold a list of
    records with whole certificates; they are re-read and certified alike, field for field."""
    with Workspace.open(catalog, environ) as ws:
        crash_before_certifying(ws, monkeypatch)
        with ws.state.begin() as conn:
            (batch,) = conn.execute(sa.select(intent_batches)).all()
            stored = json.loads(batch.intents)
            whole = [{**entry, "certificate": {**stored["common"], **entry["certificate"]}}
                     for entry in stored["records"]]  # fmt: skip
            conn.execute(sa.update(intent_batches).values(intents=json.dumps(whole)))
        outcome = api.run(ws, policies=["interviewees"], as_of=AS_OF)
        certs = ledger(ws)
        report = api.verify_ledger(ws)
    assert outcome.reconciled == 2 and outcome.disposed == 1
    reconciled = {c["record_ref"]: c for c in certs if c["certificate_id"] in
                  {e["certificate"]["certificate_id"] for e in whole}}  # fmt: skip
    assert len(reconciled) == 2 and report.ok
    for entry in whole:  # each certificate is the body its intent promised, sealed, by the
        cert = reconciled[entry["record_ref"]]  # run that re-read and certified it
        assert {k: cert[k] for k in entry["certificate"]} == {
            **entry["certificate"],
            "run_id": outcome.run_id,
        }
        assert cert["policy"] == "interviewees" and cert["plan_id"] == stored["common"]["plan_id"]


def test_run_interrupted_after_the_source_commit_is_certified_by_the_next_run(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intents left by a run that died after changing the source become certificates later."""
    with Workspace.open(catalog, environ) as ws:
        before = len(source_rows(ws)["interviewees"])
        crash_before_certifying(ws, monkeypatch)
        assert len(source_rows(ws)["interviewees"]) == before - 2  # the first batch is gone
        with ws.state.connect() as conn:
            pending = conn.scalar(sa.select(sa.func.sum(intent_batches.c.records)))
        assert pending == 2  # batch_size 2: the first batch was applied, then the crash
        outcome = api.run(ws, policies=["interviewees"], as_of=AS_OF)
        certs = ledger(ws)
        report = api.verify_ledger(ws)
        with ws.state.connect() as conn:
            pending = conn.scalar(sa.select(sa.func.count()).select_from(intent_batches))
    assert outcome.reconciled == 2 and outcome.disposed == 1
    assert sorted(c["record_ref"] for c in certs) == sorted({c["record_ref"] for c in certs})
    assert len(certs) == 3 and pending == 0 and report.ok


def test_no_personal_data_reaches_logs_reports_or_certificates(
    catalog: Path, environ: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names, emails and identity codes never appear in logs, reports, certificates or exports."""
    from retention import logs

    logs.configure(json=True)
    with Workspace.open(catalog, environ) as ws:
        personal = [
            str(v)
            for rows in source_rows(ws).values()
            for r in rows
            for k, v in r.items()
            if k in ("person_id", "first_name", "email", "name")
        ]
        for suffix in ("json", "csv", "html"):
            api.plan(ws, as_of=AS_OF, report=tmp_path / f"plan.{suffix}")
        api.run(ws, as_of=AS_OF)
        api.export(ws, tmp_path / "certs.jsonl")
        api.export(ws, tmp_path / "certs.csv")
    captured = capsys.readouterr()
    texts = [captured.out, captured.err] + [
        (tmp_path / name).read_text()
        for name in ("plan.json", "plan.csv", "plan.html", "certs.jsonl", "certs.csv")
    ]
    assert "RunFinished" in captured.err
    for value in personal:
        for text in texts:
            assert value not in text


def test_commands_that_write_refuse_without_the_secret(catalog: Path) -> None:
    """Without RETENTION_SECRET, plan and run stop before reading or changing anything."""
    from retention.errors import MissingSecret

    with Workspace.open(catalog, {}) as ws, pytest.raises(MissingSecret):
        api.run(ws, as_of=AS_OF)
    with Workspace.open(catalog, {"RETENTION_SECRET": "short"}) as ws, pytest.raises(MissingSecret):
        api.plan(ws, as_of=AS_OF)


def test_secret_is_used_for_record_references(catalog: Path) -> None:
    """record_ref depends on the secret: without it a certificate cannot be linked to a row."""
    from retention.pseudonym import Secret

    a = Secret(SECRET.encode()).record_ref("crm", "alumni", [1])
    b = Secret((SECRET + "other").encode()).record_ref("crm", "alumni", [1])
    assert a != b and HEX64.match(a)


def test_today_is_the_catalogs_local_day(tmp_path: Path, environ: dict[str, str]) -> None:
    """Without --as-of, a plan late on 21 November UTC is already 22 November in Helsinki."""
    from freezegun import freeze_time

    from tests.conftest import build_sources

    source, state = f"sqlite:///{tmp_path / 'src.db'}", f"sqlite:///{tmp_path / 'state.db'}"
    build_sources(source)
    root = write_catalog(tmp_path / "c", source, state)
    with freeze_time("2026-11-21 23:30:00"), Workspace.open(root, environ) as ws:
        plan, _ = api.plan(ws, policies=["alumni-membership"])
    assert plan.as_of == AS_OF
    # Row 2 ended on 2026-11-22: due on that Helsinki day (P0D), though UTC is a day behind.
    assert plan.policies[0].counts.expire == 3


def test_a_dry_run_job_is_never_enforced(catalog: Path, environ: dict[str, str]) -> None:
    """`run --job` refuses a job whose mode is dry-run, even when policies are named too."""
    from retention.errors import UsageError

    (catalog / "jobs" / "weekly.yaml").write_text(
        'id: weekly\nschedule: "0 7 * * 1"\npolicies: ["*"]\nmode: dry-run\n'
    )
    with Workspace.open(catalog, environ) as ws:
        before = source_rows(ws)
        for policies in ((), ("*",)):
            with pytest.raises(UsageError, match="dry-run mode"):
                api.run(ws, job="weekly", policies=policies, as_of=AS_OF)
        with pytest.raises(UsageError, match="outside the years"):
            api.plan(ws, as_of=__import__("datetime").date(9999, 12, 31))
        assert source_rows(ws) == before


def test_hold_report_lists_what_each_hold_keeps(catalog: Path, environ: dict[str, str]) -> None:
    """The hold report names, per hold, the due records it keeps from disposal, by key."""
    with Workspace.open(catalog, environ) as ws:
        person = ws.holds.place(reason="complaint", placed_by="dpo", secret=ws.secret,
                                subject="060695-905F")  # fmt: skip
        register = ws.holds.place(reason="audit", placed_by="rm", secret=None,
                                  register="amkoodari")  # fmt: skip
        idle = ws.holds.place(reason="nothing due", placed_by="rm", secret=None,
                              register="xamk-alumni", policy="project-contracts",
                              record=["HQ", "C-9"])  # fmt: skip
        _, coverage = api.hold_report(ws, AS_OF)
    by_id = {c.hold.hold_id: c.records for c in coverage}
    assert by_id[person.hold_id] == {"xamk-alumni/alumni-membership": ["6"]}
    assert by_id[register.hold_id] == {"amkoodari/interviewees": ["1", "2", "3"]}
    assert by_id[idle.hold_id] == {}


def test_a_clock_set_to_2099_trips_the_due_share_valve(
    catalog: Path, environ: dict[str, str]
) -> None:
    """When far more is due at once than usual, the policy refuses and nothing changes."""
    settings = catalog / "retention.yaml"
    settings.write_text(settings.read_text() + "max_due_share: 0.8\n")
    with Workspace.open(catalog, environ) as ws:
        before = source_rows(ws)
        with freeze_time("2099-01-01 12:00:00"):  # a run never acts as of a day ahead
            outcome = api.run(ws, policies=["customer-contracts"])
        assert source_rows(ws) == before
        assert list(ws.ledger.iter_certificates()) == []
    stopped = outcome.policies[0]
    assert outcome.exit_code == EXIT_SAFETY_VALVE and stopped.status == "stopped"
    assert "3 of 3 records (100%) are due, more than max_due_share 80%" in (stopped.message or "")
    assert stopped.counts.expire == 3


def test_a_removed_checkpoint_is_detected(catalog: Path, environ: dict[str, str]) -> None:
    """Dropping the signature of a finished run leaves its certificates exposed: a fault."""
    from retention.state.database import checkpoints

    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, as_of=AS_OF)
        with ws.state.begin() as conn:
            conn.execute(sa.delete(checkpoints))
        report = api.verify_ledger(ws)
    assert not report.ok
    assert any(outcome.run_id in f and "without a signed checkpoint" in f for f in report.faults)


def test_export_refuses_to_sign_a_ledger_that_does_not_verify(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """A tampered ledger is never exported under a fresh signature."""
    from retention.errors import LedgerError

    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        with ws.state.begin() as conn:
            row = conn.execute(sa.select(certificates).where(certificates.c.seq == 1)).one()
            body = json.loads(row.body)
            body["legal_basis"] = "forged"
            conn.execute(
                sa.update(certificates).where(certificates.c.seq == 1).values(body=json.dumps(body))
            )
        with pytest.raises(LedgerError, match="cannot be exported"):
            api.export(ws, tmp_path / "out.jsonl", register="amkoodari")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_record_hold_names_the_record_as_the_source_types_it(
    catalog: Path, environ: dict[str, str]
) -> None:
    """`--record 01` on a number key holds record 1; a value that cannot be a key is refused."""
    from retention.errors import UsageError

    with Workspace.open(catalog, environ) as ws:
        hold = api.place_hold(ws, reason="dispute", placed_by="rm", policy="alumni-membership",
                              record=["01"]).hold  # fmt: skip
        with pytest.raises(UsageError, match="is not a key of"):
            api.place_hold(ws, reason="x", placed_by="rm", policy="alumni-membership",
                           record=["one"])  # fmt: skip
        outcome = api.run(ws, policies=["alumni-membership"], as_of=AS_OF)
    assert hold.record_key == '["1"]'
    assert outcome.policies[0].counts.held == 1


def test_status_shows_runs_and_what_an_interrupted_run_left(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status` lists runs with what they did, and the intents a dead run left behind."""
    from retention.evidence.ledger import Ledger

    def crash(conn: Any, bodies: Any) -> Any:
        raise KeyboardInterrupt

    with Workspace.open(catalog, environ) as ws:
        done = api.run(ws, policies=["customer-contracts"], as_of=AS_OF)
        monkeypatch.setattr(Ledger, "append", staticmethod(crash))
        with pytest.raises(KeyboardInterrupt):
            api.run(ws, policies=["interviewees"], as_of=AS_OF)
        found = api.status(ws)
    runs_by_id = {r["run_id"]: r for r in found.runs}
    assert runs_by_id[done.run_id]["status"] == "completed"
    assert runs_by_id[done.run_id]["policies"]["xamk-alumni/customer-contracts"]["disposed"] == 2
    assert [r["status"] for r in found.runs if r["run_id"] != done.run_id] == ["running"]
    assert found.pending_intents == {"amkoodari/interviewees": 2}
    assert found.locks == [] and found.certificates == 2


def test_explain_tells_why_a_record_is_kept_due_held_or_done(
    catalog: Path, environ: dict[str, str]
) -> None:
    """explain decides one record by the run's own rules and names dates, hold and certificate."""
    with Workspace.open(catalog, environ) as ws:
        kept = api.explain(ws, "alumni-membership", ["3"], AS_OF)
        due = api.explain(ws, "alumni-membership", ["1"], AS_OF)
        secret = api.explain(ws, "alumni-membership", ["6"], AS_OF)
        hold = api.place_hold(ws, reason="dispute", placed_by="rm",
                              policy="customer-contracts", record=["B", "C-1"]).hold  # fmt: skip
        held = api.explain(ws, "customer-contracts", ["B", "C-1"], AS_OF)
        api.run(ws, policies=["interviewees"], as_of=AS_OF)
        gone = api.explain(ws, "interviewees", ["2"], AS_OF)
    assert (kept.decision, kept.trigger_date, kept.expires_on) == (
        "retain",
        date(2026, 11, 23),
        date(2026, 11, 23),
    )
    assert (due.decision, due.expires_on) == ("expire", date(2019, 5, 31))
    assert secret.secret and secret.decision == "expire" and secret.trigger_date is None
    assert held.decision == "held" and held.hold is not None and held.hold.hold_id == hold.hold_id
    assert not gone.found and gone.decision == "done"
    assert gone.certificate is not None and gone.certificate["action"] == "deleted"


def test_forecast_counts_what_falls_due_month_by_month(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Records not yet due appear in the month their first due day falls in, nowhere else."""
    with Workspace.open(catalog, environ) as ws:
        found = api.forecast(ws, 3, AS_OF)
    assert found.months == ["2026-11", "2026-12", "2027-01"]
    assert found.counts["xamk-alumni/alumni-membership"] == [1, 0, 0]  # ends 2026-11-23
    assert found.counts["xamk-alumni/customer-contracts"] == [0, 0, 1]  # due 2027-01-01
    assert found.counts["xamk-alumni/project-contracts"] == [0, 0, 0]  # due in 2031
    assert found.counts["amkoodari/interviewees"] == [0, 0, 0]  # all due already
