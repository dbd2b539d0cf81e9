"""Approval before destruction: approve a stored plan, then execute exactly it, once."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from retention import api
from retention.catalog.clock import Duration
from retention.errors import EXIT_INVALID, EXIT_SUCCESS, UsageError
from retention.scheduler import run_job
from retention.state.database import plans
from retention.testing import ScratchDatabase
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET
from tests.test_cli import make_catalog, on
from tests.test_engine import ledger, source_rows

#: The day before AS_OF: alumni record 2 (membership ended on AS_OF) is not yet due then.
PLAN_DAY = AS_OF - timedelta(days=1)
PLANNED = {
    "amkoodari/interviewees": 3,
    "xamk-alumni/alumni-membership": 2,
    "xamk-alumni/customer-contracts": 2,
    "xamk-alumni/project-contracts": 1,
}
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def plan_row(ws: Workspace, plan_id: str) -> dict[str, Any]:
    with ws.state.connect() as conn:
        row = conn.execute(sa.select(plans).where(plans.c.plan_id == plan_id)).mappings().one()
    return dict(row)


def update_source(ws: Workspace, statement: str, **values: Any) -> None:
    with ws.connector("crm").engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.text(statement), values)


def alumni(ws: Workspace) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in source_rows(ws)["alumni"]}


def approved_plan(ws: Workspace, **approval: Any) -> str:
    """A plan as of PLAN_DAY, approved by a records manager."""
    made, _ = api.plan(ws, as_of=PLAN_DAY)
    api.approve(ws, made.plan_id, by=approval.pop("by", "Riikka Records"), **approval)
    return made.plan_id


# --- executing an approved plan (every backend) -------------------------------------------------


def test_run_plan_disposes_exactly_the_planned_records(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Only the plan's records go; each certificate names the plan and its approver; a record
    that fell due after the plan is untouched and counted as unplanned."""
    with Workspace.open(catalog, environ) as ws:
        plan_id = approved_plan(ws, comment="checked against the register")
        before = alumni(ws)
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
        after = alumni(ws)
        certs = ledger(ws)
        row = plan_row(ws, plan_id)
        verified = api.verify_ledger(ws)
    assert outcome.exit_code == EXIT_SUCCESS
    assert {p.name: p.disposed for p in outcome.policies} == PLANNED
    by_name = {p.name: p for p in outcome.policies}
    assert by_name["xamk-alumni/alumni-membership"].unplanned == 1
    assert after[2] == before[2]  # due on AS_OF, but not in the plan
    assert after[1]["first_name"] is None and after[6]["first_name"] is None
    assert len(certs) == sum(PLANNED.values())
    assert {(c["plan_id"], c["approved_by"]) for c in certs} == {(plan_id, "Riikka Records")}
    assert row["executed_run"] == outcome.run_id
    assert row["approved_by"] == "Riikka Records"
    assert row["comment"] == "checked against the register"
    assert verified.ok


def test_a_large_plan_has_postgresqls_statistics_of_its_records_refreshed(
    catalog: Path, environ: dict[str, str], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the table is analysed PostgreSQL plans run --plan's lookups as if plan_records
    were as empty as after init, reading every record of the plan per batch: a plan of
    ANALYSE_AFTER stored records or more is analysed when it is made."""
    from retention.decide import plan as planning

    if backend != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    monkeypatch.setattr(planning, "ANALYSE_AFTER", 1)
    with Workspace.open(catalog, environ) as ws:

        def estimated() -> float:
            with ws.state.connect() as conn:
                return float(conn.scalar(sa.text(
                    "SELECT reltuples FROM pg_class WHERE oid = 'plan_records'::regclass"
                )))  # fmt: skip

        assert estimated() <= 0  # never analysed since init
        made = planning.make_plan(ws, ws.catalog.select(["*"]), PLAN_DAY)
        stored = sum(p.counts.expire + p.counts.held for p in made.policies)
        assert stored > 0 and estimated() >= stored


def test_a_record_changed_after_the_plan_is_skipped_and_reported(
    catalog: Path, environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A planned record whose trigger date changed (still due) is not touched; the run counts
    it as changed and logs its reference, never its values."""
    from retention import logs

    logs.configure()
    with Workspace.open(catalog, environ) as ws:
        plan_id = approved_plan(ws)
        update_source(ws, "UPDATE alumni SET membership_ended_on = :d WHERE id = 1",
                      d=date(2020, 1, 1))  # fmt: skip
        before = alumni(ws)
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
        after = alumni(ws)
        certs = ledger(ws)
        ref = ws.secret.record_ref("crm", "alumni", [1])
        summary = api.status(ws).runs[0]["policies"]
    policy = next(p for p in outcome.policies if p.policy == "alumni-membership")
    assert (policy.disposed, policy.changed, policy.unplanned) == (1, 1, 1)
    assert after[1] == before[1]
    assert ref not in {c["record_ref"] for c in certs}
    assert summary["xamk-alumni/alumni-membership"]["changed"] == 1  # type: ignore[index]
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    changed = [e for e in logged if e["event"] == "PlannedRecordChanged"]
    assert [(e["plan_id"], e["record_ref"]) for e in changed] == [(plan_id, ref)]
    assert "Aino" not in json.dumps(logged)


def test_a_subject_change_counts_as_a_change(catalog: Path, environ: dict[str, str]) -> None:
    """The fingerprint covers the columns the decision reads, such as the secret mark."""
    with Workspace.open(catalog, environ) as ws:
        plan_id = approved_plan(ws)
        update_source(ws, "UPDATE alumni SET turvakielto = 1 WHERE id = 1")
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
        row = alumni(ws)[1]
    policy = next(p for p in outcome.policies if p.policy == "alumni-membership")
    assert policy.changed == 1 and row["first_name"] == "Aino"


def test_a_hold_placed_after_approval_wins(catalog: Path, environ: dict[str, str]) -> None:
    """Approval does not override a hold: the held record stays as it was."""
    with Workspace.open(catalog, environ) as ws:
        plan_id = approved_plan(ws)
        api.place_hold(ws, reason="Oikeudenkäynti 2026/17", placed_by="lakimies",
                       policy="alumni-membership", record=["1"])  # fmt: skip
        before = alumni(ws)
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
        after = alumni(ws)
    policy = next(p for p in outcome.policies if p.policy == "alumni-membership")
    assert policy.counts.held == 1 and policy.disposed == 1
    assert after[1] == before[1]


def test_a_plan_executes_at_most_once(catalog: Path, environ: dict[str, str]) -> None:
    """A second `run --plan` is refused and changes nothing."""
    with Workspace.open(catalog, environ) as ws:
        plan_id = approved_plan(ws)
        first = api.run_plan(ws, plan_id, as_of=AS_OF)
        certs = ledger(ws)
        with pytest.raises(UsageError, match=f"already executed by run {first.run_id}"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        assert ledger(ws) == certs
        assert plan_row(ws, plan_id)["executed_run"] == first.run_id


def test_expired_plan_cannot_be_approved_or_run(catalog: Path, environ: dict[str, str]) -> None:
    """Past plan_expires_after (14 days by default) a plan is neither approved nor executed."""
    with Workspace.open(catalog, environ) as ws, freeze_time(T0) as clock:
        made, _ = api.plan(ws, as_of=PLAN_DAY)
        approved, _ = api.plan(ws, as_of=PLAN_DAY)
        clock.tick(timedelta(days=13))
        api.approve(ws, approved.plan_id, by="Riikka Records")
        clock.tick(timedelta(days=1, seconds=1))
        before = source_rows(ws)
        with pytest.raises(UsageError, match="expired at 2026-12-05 11:00 EET"):
            api.approve(ws, made.plan_id, by="Riikka Records")
        with pytest.raises(UsageError, match="plan_expires_after: P14D"):
            api.run_plan(ws, approved.plan_id, as_of=AS_OF)
        assert plan_row(ws, made.plan_id)["approved_by"] is None
        assert source_rows(ws) == before and ledger(ws) == []
        states = {p.plan_id: p.state for p in api.plans(ws)}
    assert states == {made.plan_id: "expired", approved.plan_id: "expired"}


def test_cooling_off_refuses_then_allows(catalog: Path, environ: dict[str, str]) -> None:
    """An approval with a cooling-off may run only once it is over, and says from when."""
    with Workspace.open(catalog, environ) as ws, freeze_time(T0) as clock:
        plan_id = approved_plan(ws, cooling_off=Duration(days=2))
        assert api.plans(ws)[0].state == "cooling-off"
        clock.tick(timedelta(days=1))
        with pytest.raises(UsageError, match="may run from 2026-11-23 11:00 EET"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        assert ledger(ws) == [] and plan_row(ws, plan_id)["executed_run"] is None
        clock.tick(timedelta(days=1))
        assert api.plans(ws)[0].state == "approved"
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
    assert outcome.disposed == sum(PLANNED.values())


def test_catalog_cooling_off_applies_to_every_approval(tmp_path: Path) -> None:
    """`approval_cooling_off` in retention.yaml holds back a plan approved without the option."""
    cat = make_catalog(tmp_path)
    settings = cat.root / "retention.yaml"
    settings.write_text(settings.read_text() + "approval_cooling_off: 2 days\n")
    with Workspace.open(cat.root, {"RETENTION_SECRET": SECRET}) as ws, freeze_time(T0) as clock:
        plan_id = approved_plan(ws)
        clock.tick(timedelta(days=1, hours=23))
        with pytest.raises(UsageError, match="cooling off"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        clock.tick(timedelta(hours=1))
        assert api.run_plan(ws, plan_id, as_of=AS_OF).disposed == sum(PLANNED.values())


def test_plan_of_a_changed_rule_is_stale(catalog: Path, environ: dict[str, str]) -> None:
    """A policy edited after the plan: approval refused; an approved plan no longer runs."""
    with Workspace.open(catalog, environ) as ws:
        approved_id = approved_plan(ws)
        pending, _ = api.plan(ws, as_of=PLAN_DAY)
    policies = catalog / "policies" / "xamk.yaml"
    policies.write_text(policies.read_text().replace('"GDPR 6(1)(f)"', '"GDPR 6(1)(c)"'))
    with Workspace.open(catalog, environ) as ws:
        before = source_rows(ws)
        with pytest.raises(UsageError, match="rules of xamk-alumni/alumni-membership changed"):
            api.approve(ws, pending.plan_id, by="Riikka Records")
        with pytest.raises(UsageError, match="would not be of what runs"):
            api.run_plan(ws, approved_id, as_of=AS_OF)
        assert plan_row(ws, pending.plan_id)["approved_by"] is None
        assert source_rows(ws) == before and ledger(ws) == []
        assert {p.state for p in api.plans(ws)} == {"stale"}


def test_approval_refusals_change_nothing(catalog: Path, environ: dict[str, str]) -> None:
    """Unknown plan, a run's own record, an erasure dry run, a second approval, an empty name."""
    with Workspace.open(catalog, environ) as ws:
        made, _ = api.plan(ws, as_of=PLAN_DAY)
        erasure = api.erase(ws, "010190-900A", as_of=AS_OF, dry_run=True).plan
        run = api.run(ws, policies=["interviewees"], as_of=AS_OF)
        assert erasure is not None
        with pytest.raises(UsageError, match="no plan 'P19990101-00000000'"):
            api.approve(ws, "P19990101-00000000", by="Riikka Records")
        with pytest.raises(UsageError, match="is a run record, not a plan made for approval"):
            api.approve(ws, run.plan_id, by="Riikka Records")
        with pytest.raises(UsageError, match="is a erasure-dry-run record"):
            api.approve(ws, erasure.plan_id, by="Riikka Records")
        with pytest.raises(UsageError, match="--by is empty"):
            api.approve(ws, made.plan_id, by="  ")
        with pytest.raises(UsageError, match="awaits approval"):
            api.run_plan(ws, made.plan_id, as_of=AS_OF)
        api.approve(ws, made.plan_id, by="Riikka Records")
        first = plan_row(ws, made.plan_id)
        with pytest.raises(UsageError, match="already approved by Riikka Records"):
            api.approve(ws, made.plan_id, by="Someone Else")
        assert plan_row(ws, made.plan_id) == first
        assert plan_row(ws, run.plan_id)["approved_by"] is None


def test_api_run_refuses_review_and_dry_run_jobs(catalog: Path, environ: dict[str, str]) -> None:
    """A review job never runs unapproved through `api.run`, nor a dry-run job at all."""
    for mode in ("review", "dry-run"):
        (catalog / "jobs" / "weekly.yaml").write_text(
            f'id: weekly\nschedule: "0 7 * * 1"\npolicies: ["*"]\nmode: {mode}\n'
        )
        with Workspace.open(catalog, environ) as ws:
            with pytest.raises(UsageError, match=f"{mode} mode"):
                api.run(ws, job="weekly", as_of=AS_OF)
            assert ledger(ws) == []


def test_previews_are_neither_listed_nor_approvable(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold report's plan and a scheduled dry run's plan show what was due when they were
    made; approving one would announce records "to dispose of" that may be long gone."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    (catalog / "jobs" / "weekly.yaml").write_text(
        'id: weekly\nschedule: "0 7 * * 1"\npolicies: ["*"]\nmode: dry-run\n'
    )
    with freeze_time(datetime(2026, 11, 22, 8, 0, tzinfo=UTC)):
        assert run_job(str(catalog), "weekly") == EXIT_SUCCESS
    with Workspace.open(catalog, environ) as ws:
        held_plan, _ = api.hold_report(ws, as_of=AS_OF)
        with ws.state.connect() as conn:
            kinds = dict(conn.execute(sa.select(plans.c.plan_id, plans.c.kind)).all())
        (scheduled,) = [p for p, kind in kinds.items() if p != held_plan]
        assert kinds == {held_plan: "preview", scheduled: "preview"}
        assert api.plans(ws) == []
        for plan_id in (held_plan, scheduled):
            with pytest.raises(UsageError, match="is a preview record, not a plan made for"):
                api.approve(ws, plan_id, by="Riikka Records")
            with pytest.raises(UsageError, match="is a preview record"):
                api.run_plan(ws, plan_id, as_of=AS_OF)
            assert plan_row(ws, plan_id)["approved_by"] is None
        assert ledger(ws) == []


# --- review jobs ---------------------------------------------------------------------------------


def test_review_job_executes_only_approved_plans(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A review job's firing runs its approved plans, leaves pending ones, makes a new plan."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    (catalog / "jobs" / "weekly.yaml").write_text(
        'id: weekly\nschedule: "0 7 * * 1"\npolicies: ["amkoodari/*", "xamk-alumni/alumni-*"]\n'
        "mode: review\n"
    )
    with Workspace.open(catalog, environ) as ws:
        before = source_rows(ws)
    with freeze_time(datetime(2026, 11, 22, 8, 0, tzinfo=UTC)) as clock:  # 10:00 on AS_OF
        assert run_job(str(catalog), "weekly") == EXIT_SUCCESS
        with Workspace.open(catalog, environ) as ws:
            assert source_rows(ws) == before and ledger(ws) == []
            (first,) = api.plans(ws, job="weekly")
            assert first.state == "pending" and first.expire == 6
            api.approve(ws, first.plan_id, by="Riikka Records")
            other, _ = api.plan(ws, job="weekly")  # made by hand, never approved
        clock.tick(timedelta(seconds=1))  # a report name of its own
        assert run_job(str(catalog), "weekly") == EXIT_SUCCESS
        with Workspace.open(catalog, environ) as ws:
            certs = ledger(ws)
            states = {p.plan_id: p.state for p in api.plans(ws, job="weekly")}
            reports = sorted((catalog / "reports").glob("weekly-*.json"))
    assert {c["plan_id"] for c in certs} == {first.plan_id}
    assert len(certs) == 6
    assert states[first.plan_id] == "executed" and states[other.plan_id] == "pending"
    assert list(states.values()).count("pending") == 2  # `other`, and the firing's new plan
    assert len(reports) == 2


# --- the command line ----------------------------------------------------------------------------


def test_cli_approve_plans_and_run_plan(tmp_path: Path) -> None:
    """The CLI approves, lists plans by state, executes once, and exits 2 on every refusal."""
    cat = make_catalog(tmp_path)
    made = on(cat, "plan", "--as-of", PLAN_DAY.isoformat())
    assert made.returncode == 0, made.stderr
    plan_id = re.search(r"\bP\d{8}-[0-9a-f]{8}\b", made.stdout).group(0)  # type: ignore[union-attr]

    listed = on(cat, "plans")
    assert listed.returncode == 0
    (line,) = listed.stdout.splitlines()
    assert line.split("\t")[:4] == [plan_id, "pending", "job=-", f"as-of={PLAN_DAY}"]
    assert "\texpire=8\tapproved-by=-\treview=0/1\texpires=" in line

    refused = on(cat, "run", "--plan", plan_id, "--as-of", AS_OF.isoformat())
    assert refused.returncode == EXIT_INVALID and "awaits approval" in refused.stderr
    bad = on(cat, "approve", plan_id, "--by", "Riikka", "--cooling-off", "soon")
    assert bad.returncode == EXIT_INVALID and "'soon' is not a period" in bad.stderr
    assert on(cat, "approve", plan_id).returncode == EXIT_INVALID  # --by is required
    assert on(cat, "approve", "P19990101-00000000", "--by", "Riikka").returncode == EXIT_INVALID

    approved = on(cat, "approve", plan_id, "--by", "Riikka Records", "--comment", "ok")
    assert approved.returncode == 0, approved.stderr
    assert f"approved plan {plan_id} (8 records to dispose of) by Riikka Records" in (
        approved.stdout
    )
    assert on(cat, "plans", "--state", "pending").stdout.strip() == "no plans in state pending"
    assert on(cat, "approve", plan_id, "--by", "Riikka").returncode == EXIT_INVALID
    mixed = on(cat, "run", "--plan", plan_id, "--job", "nightly")
    assert mixed.returncode == EXIT_INVALID

    ran = on(cat, "run", "--plan", plan_id, "--as-of", AS_OF.isoformat())
    assert ran.returncode == 0, ran.stderr
    assert "disposed of 8 records" in ran.stdout
    assert "1 due records not in the plan were left for the next plan" in ran.stdout
    again = on(cat, "run", "--plan", plan_id)
    assert again.returncode == EXIT_INVALID and "already executed" in again.stderr
    executed = on(cat, "plans", "--state", "executed").stdout
    fields = executed.strip().split("\t")
    assert fields[:2] == [plan_id, "executed"] and "approved-by=Riikka Records" in fields
    assert re.fullmatch(r"run=R\d{8}-[0-9a-f]{8}", fields[-1])
    assert on(cat, "plans", "--state", "soon").returncode == EXIT_INVALID


def test_an_archive_plan_packages_only_unchanged_planned_records(
    tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase, environ: dict[str, str]
) -> None:
    """Archive-then-delete through a plan: a changed record is neither packaged nor deleted."""
    from tests import test_archive

    test_archive.build(source_db.url)
    root = tmp_path / "archive-catalog"
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True)
    (root / "policies" / "karelia.yaml").write_text(test_archive.POLICIES, encoding="utf-8")
    (root / "connectors" / "src.yaml").write_text(f"id: src\nkind: sql\nurl: {source_db.url}\n")
    (root / "retention.yaml").write_text(f"state: {state_db.url}\narchive: archive\n")
    api.init(root, {})
    with Workspace.open(root, environ) as ws:
        made, _ = api.plan(ws, policies=["former-students"], as_of=AS_OF)
        api.approve(ws, made.plan_id, by="Arkistonhoitaja")
        with ws.connector("src").engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.text("UPDATE students SET ended_on = :d WHERE student_number = 2"),
                         {"d": date(2021, 12, 30)})  # fmt: skip
        outcome = api.run_plan(ws, made.plan_id, as_of=AS_OF).policies[0]
        left = test_archive.rows(ws, "students")
        certs = ledger(ws)
    assert (outcome.disposed, outcome.changed) == (1, 1)
    assert [r["student_number"] for r in left] == [2, 3]
    assert [(c["plan_id"], c["approved_by"]) for c in certs] == [(made.plan_id, "Arkistonhoitaja")]
    package = root / "archive" / str(outcome.archived)
    assert len(list((package / "data" / "records").iterdir())) == 1
