"""A run never acts as of a day after today; ``verify`` reports a disposal before its day.

Plans, forecasts, explanations and the hold report may look ahead; every path that disposes
of records (run, run of an approved plan, review, erasure) refuses a future as-of day, with
exit 2 and nothing changed. Today is the catalog's local day (Europe/Helsinki in the tests).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from retention import api
from retention.errors import EXIT_INVALID, UsageError
from retention.evidence import export, ledger
from retention.evidence.certificate import disposed_early
from retention.state.database import certificates, runs
from retention.workspace import Workspace
from tests.conftest import AS_OF
from tests.test_cli import explain, make_catalog, on
from tests.test_engine import source_rows

#: 12:00 in Helsinki on AS_OF.
NOON = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
TOMORROW = AS_OF + timedelta(days=1)


def run_count(ws: Workspace) -> int:
    with ws.state.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(runs)) or 0)


def test_every_disposing_path_refuses_a_future_as_of(
    catalog: Path, environ: dict[str, str]
) -> None:
    """run, erase, a review job and an approved plan run as of tomorrow: refused, exit 2,
    no source row, certificate or run row changed."""
    with Workspace.open(catalog, environ) as ws, freeze_time(NOON):
        before = source_rows(ws)
        made, _ = api.plan(ws, as_of=AS_OF)
        api.approve(ws, made.plan_id, by="Riikka Records")
        attempts: list[Any] = [
            lambda: api.run(ws, as_of=TOMORROW),
            lambda: api.run(ws, policies=["customer-contracts"], as_of=date(2040, 1, 1)),
            lambda: api.run_plan(ws, made.plan_id, as_of=TOMORROW),
            lambda: api.erase(ws, "010190-900A", as_of=TOMORROW),
        ]
        for attempt in attempts:
            with pytest.raises(UsageError, match="after today") as caught:
                attempt()
            assert caught.value.exit_code == EXIT_INVALID
            assert "2026-11-22" in str(caught.value)  # names today
        assert source_rows(ws) == before
        assert list(ws.ledger.iter_certificates()) == []
        assert run_count(ws) == 0
        # The plan was not used up by the refused run: it still runs today.
        assert api.run_plan(ws, made.plan_id, as_of=AS_OF).disposed > 0


def test_looking_ahead_is_allowed_where_nothing_is_disposed(
    catalog: Path, environ: dict[str, str]
) -> None:
    """plan, forecast, explain, the hold report and an erasure dry run may look ahead."""
    with Workspace.open(catalog, environ) as ws, freeze_time(NOON):
        before = source_rows(ws)
        made, _ = api.plan(ws, as_of=date(2040, 1, 1))
        assert made.as_of == date(2040, 1, 1)
        assert api.forecast(ws, 12, as_of=date(2030, 1, 1)).as_of == date(2030, 1, 1)
        assert api.explain(ws, "alumni-membership", ["3"], as_of=TOMORROW) is not None
        api.hold_report(ws, TOMORROW)
        erasure = api.erase(ws, "030392-902C", as_of=TOMORROW, dry_run=True)
        assert erasure.plan is not None and erasure.run is None
        assert source_rows(ws) == before


def test_today_is_the_catalogs_local_day_for_the_future_rule(
    catalog: Path, environ: dict[str, str]
) -> None:
    """At 23:30 UTC on AS_OF it is already the next day in Helsinki: a run as of that day
    runs, one as of the day after is refused; a run may look back."""
    late = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    with Workspace.open(catalog, environ) as ws, freeze_time(late):
        assert api.run(ws, policies=["alumni-membership"], as_of=TOMORROW).exit_code == 0
        with pytest.raises(UsageError, match="after today"):
            api.run(ws, as_of=TOMORROW + timedelta(days=1))
        assert api.run(ws, as_of=date(2020, 1, 1)).exit_code == 0


def test_a_job_whose_zone_is_ahead_never_runs_before_the_catalogs_day(
    catalog: Path, environ: dict[str, str]
) -> None:
    """15:00 in Helsinki is already tomorrow in Kiritimati (UTC+14): a job scheduled there
    runs as of the catalog's today by default, and is refused tomorrow, as a run of no job."""
    (catalog / "jobs" / "kiri.yaml").write_text(
        'id: kiri\nschedule: "0 3 * * *"\ntimezone: Pacific/Kiritimati\npolicies: ["*"]\n'
    )
    with Workspace.open(catalog, environ) as ws, freeze_time(NOON):
        with pytest.raises(UsageError, match=r"after today \(2026-11-22 in Europe/Helsinki\)"):
            api.run(ws, job="kiri", as_of=TOMORROW)
        assert api.as_of_or_today(ws, None, "kiri") == AS_OF
        assert api.run(ws, job="kiri").as_of == AS_OF


def test_an_approved_plan_as_of_a_future_day_waits_for_that_day(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A plan made as of tomorrow and approved today is not runnable until tomorrow."""
    with Workspace.open(catalog, environ) as ws:
        with freeze_time(NOON):
            made, _ = api.plan(ws, as_of=TOMORROW)
            status = api.approve(ws, made.plan_id, by="Riikka Records")
            assert status.state == "cooling-off"
            with pytest.raises(UsageError, match="as of 2026-11-23") as caught:
                api.run_plan(ws, made.plan_id)
            assert caught.value.exit_code == EXIT_INVALID
            assert list(ws.ledger.iter_certificates()) == []
        with freeze_time(NOON + timedelta(days=1)):
            assert api.plans(ws)[0].state == "approved"
            assert api.run_plan(ws, made.plan_id).disposed > 0


def test_the_command_line_refuses_a_future_run_with_exit_2(tmp_path: Path) -> None:
    """`retention run --as-of 2040-01-01` exits 2 with a message and changes nothing."""
    cat = make_catalog(tmp_path)
    before = cat.source.read_bytes()
    proc = on(cat, "run", "--as-of", "2040-01-01")
    assert proc.returncode == EXIT_INVALID, explain(proc)
    assert "--as-of 2040-01-01 is after today" in proc.stderr
    assert cat.source.read_bytes() == before


# --- verify: a certificate disposed of before its day -------------------------------------------


def certificate(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "certificate_id": "0190f000-0000-7000-8000-000000000001", "run_id": "R1",
        "plan_id": "P1", "approved_by": None, "register": "xamk-alumni",
        "policy": "customer-contracts", "policy_sha256": "0" * 64, "record_ref": "f" * 64,
        "action": "deleted", "reason": "retention", "fields": [], "archive": None,
        "trigger_date": "2015-12-31", "expires_on": "2026-01-01",
        "executed_at": "2026-11-22T10:00:00+00:00", "verified": True, "legal_basis": None,
    }  # fmt: skip
    return {**body, **fields}


@pytest.mark.parametrize(
    ("fields", "early"),
    [
        ({}, False),
        ({"expires_on": "2026-11-22"}, False),
        ({"expires_on": "2036-01-01"}, True),
        ({"expires_on": "2036-01-01", "reason": "erasure-request"}, False),
        ({"expires_on": None}, False),
        # 22:30 UTC is already the 23rd in Helsinki: due that day, not early.
        ({"expires_on": "2026-11-23", "executed_at": "2026-11-22T22:30:00+00:00"}, False),
        # The 24th has begun nowhere on Earth at that moment.
        ({"expires_on": "2026-11-24", "executed_at": "2026-11-22T22:30:00+00:00"}, True),
    ],
)
def test_disposed_early_compares_expires_on_with_the_execution_day(
    fields: dict[str, Any], early: bool
) -> None:
    """A certificate whose record was due after the day it was executed is reported, unless
    an erasure request disposed of it; the day is the latest calendar day on Earth then."""
    fault = disposed_early(certificate(**fields))
    assert (fault is not None) == early
    if fault is not None:
        assert "expires_on 2036-01-01" in fault or "expires_on 2026-11-24" in fault


def append_signed(ws: Workspace, *bodies: dict[str, Any]) -> None:
    """Certificates as a finished run R1 would leave them: signed by its checkpoint, and
    counted in its `runs` row (verify holds one to the other)."""
    with ws.state.begin() as conn:
        ws.ledger.append(conn, bodies)
    ws.ledger.checkpoint("R1", ws.signing_key())
    with ws.state.begin() as conn:
        total = conn.scalar(
            sa.select(sa.func.count())
            .select_from(certificates)
            .where(certificates.c.run_id == "R1")
        )
        conn.execute(sa.delete(runs).where(runs.c.run_id == "R1"))
        conn.execute(runs.insert().values(
            run_id="R1", plan_id="P1", started_at=datetime(2026, 11, 22, 9, tzinfo=UTC),
            finished_at=datetime(2026, 11, 22, 11, tzinfo=UTC), status="completed", exit_code=0,
            summary=json.dumps({"xamk-alumni/customer-contracts": {"disposed": total}}),
        ))  # fmt: skip


def test_verify_reports_a_certificate_executed_before_its_expiry(
    catalog: Path, environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A correctly chained and signed certificate saying its record was deleted ten years
    early fails `verify` of the ledger and of an export; an erasure's certificate does not."""
    with Workspace.open(catalog, environ) as ws:
        append_signed(
            ws,
            certificate(certificate_id="0190f000-0000-7000-8000-00000000000a",
                        expires_on="2036-01-01", reason="erasure-request"),
        )  # fmt: skip
        assert api.verify_ledger(ws).ok
        append_signed(ws, certificate(expires_on="2036-01-01"))
        report = api.verify_ledger(ws)
        assert not report.ok
        [fault] = report.faults
        assert "0190f000-0000-7000-8000-000000000001" in fault and "before" in fault
        # An export made regardless (the ledger check is what refuses it) is caught too.
        monkeypatch.setattr(ledger, "disposed_early", lambda cert: None)
        out = tmp_path / "certs.jsonl"
        api.export(ws, out)
        monkeypatch.undo()
        checked = export.verify_export(out, ws.signing_key().public_key())
    assert [f for f in checked.faults if "before" in f] and len(checked.faults) == 1
