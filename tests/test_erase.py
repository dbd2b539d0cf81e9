"""Erasure requests: one person's records now, refused by statutory registers, on every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.errors import UsageError
from retention.workspace import Workspace
from tests.conftest import AS_OF

STATUTORY = """\
register:
  id: sedu-atomi
  name: Atomi
  controller: Seinäjoen koulutuskuntayhtymä
  source: "Atomi tietosuojaseloste"
  statutory: true
policies:
  - id: staff-records
    connector: crm
    table: alumni
    key: id
    subject: person_id
    match: {kind: staff}
    trigger: membership_ended_on
    retain: P1Y
    action: delete
"""


@pytest.fixture
def erasable(catalog: Path) -> Path:
    """The shared test catalog plus a statutory register over the staff rows."""
    (catalog / "policies" / "sedu.yaml").write_text(STATUTORY, encoding="utf-8")
    return catalog


def alumni(ws: Workspace) -> dict[int, dict[str, Any]]:
    engine = ws.connector("crm").engine  # type: ignore[attr-defined]
    t = sa.Table("alumni", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(sa.select(t)).mappings()}


def test_erasure_disposes_of_a_persons_records_before_they_are_due(
    erasable: Path, environ: dict[str, str]
) -> None:
    """Helmi's membership runs until tomorrow; her erasure request anonymises her row today."""
    with Workspace.open(erasable, environ) as ws:
        before = alumni(ws)
        outcome = api.erase(ws, "030392-902C", as_of=AS_OF)
        after = alumni(ws)
        certs = list(ws.ledger.iter_certificates())
        assert api.verify_ledger(ws).ok
    assert outcome.run is not None and outcome.exit_code == 0
    assert after[3]["first_name"] is None and after[3]["email"] is None
    assert {k: v for k, v in after.items() if k != 3} == {k: v for k, v in before.items() if k != 3}
    assert len(certs) == 1
    assert certs[0]["reason"] == "erasure-request" and certs[0]["action"] == "anonymised"
    assert certs[0]["policy"] == "alumni-membership"
    assert [r.register for r in outcome.refusals if r.policy is None] == ["sedu-atomi"]


def test_statutory_register_refuses_and_stays_untouched(
    erasable: Path, environ: dict[str, str]
) -> None:
    """Väinö's staff row lives in a statutory register: the request is refused, the row stays."""
    with Workspace.open(erasable, environ) as ws:
        before = alumni(ws)
        outcome = api.erase(ws, "050594-904E", as_of=AS_OF)
        with pytest.raises(UsageError, match="sedu-atomi does not honour erasure requests"):
            api.erase(ws, "050594-904E", register="sedu-atomi", as_of=AS_OF)
        after = alumni(ws)
        certs = list(ws.ledger.iter_certificates())
    assert after == before and certs == []
    refusal = next(r for r in outcome.refusals if r.register == "sedu-atomi")
    assert "statutory" in refusal.reason


def test_dry_run_shows_the_records_and_changes_nothing(
    erasable: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """The dry-run form lists what would be erased, by key, and leaves every source as it was."""
    import json

    from retention.reports.formats import write_report

    with Workspace.open(erasable, environ) as ws:
        before = alumni(ws)
        outcome = api.erase(ws, "010190-900A", as_of=AS_OF, dry_run=True)
        assert outcome.plan is not None and outcome.run is None
        report = json.loads(write_report(ws, outcome.plan.plan_id, tmp_path / "e.json").read_text())
        assert alumni(ws) == before
        assert list(ws.ledger.iter_certificates()) == []
    listed = [r for p in report["policies"] for r in p["records"]]
    assert [(r["key"], r["decision"]) for r in listed] == [("1", "expire")]
    assert report["kind"] == "erasure-dry-run"


def test_a_hold_on_the_person_blocks_the_erasure(erasable: Path, environ: dict[str, str]) -> None:
    """A legal hold outranks an erasure request: the record is held, not disposed of."""
    with Workspace.open(erasable, environ) as ws:
        ws.holds.place(reason="court order", placed_by="dpo", secret=ws.secret,
                       subject="010190-900A")  # fmt: skip
        before = alumni(ws)
        outcome = api.erase(ws, "010190-900A", as_of=AS_OF)
        assert alumni(ws) == before
    assert outcome.run is not None
    held = next(p for p in outcome.run.policies if p.policy == "alumni-membership")
    assert held.counts.held == 1 and held.disposed == 0


def test_policies_without_a_subject_column_are_named_not_guessed(
    erasable: Path, environ: dict[str, str]
) -> None:
    """Policies that cannot find a person's records say so in the answer."""
    with Workspace.open(erasable, environ) as ws:
        outcome = api.erase(ws, "010190-900A", as_of=AS_OF, dry_run=True)
    unsearchable = {r.policy for r in outcome.refusals if r.policy is not None}
    assert unsearchable == {"customer-contracts", "project-contracts", "interviewees"}
