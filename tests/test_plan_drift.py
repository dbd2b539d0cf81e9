"""Drift between the records-management plan and the catalog, one case at a time, and the
floor the plan puts under every destroying decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retention.catalog.clock import Duration
from retention.catalog.loading import BoundPolicy, load_catalog, read_catalog
from retention.catalog.model import Retain
from retention.catalog.plan_drift import plan_drift
from retention.catalog.records_plan import Retention
from retention.decide.plan import plan_floor, record_expires_on, selection_for

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 11, 22)

POLICIES = """\
register:
  id: jamk-mobility
  name: Kansainvälinen liikkuvuus
  controller: JAMK
  source: test
  records_plan: records-plans/jamk.xml
policies:
  - id: mobility
    connector: db
    table: mobility_cases
    key: id
    trigger: closed_on
    retain: P10Y
    count_from: year_end
    action: delete
    records_plan:
      class_code: '05.04'
      record_type: jamk-mobility-case
      tos: jamk-tos
      version: '2019.1'
      start_event: Liikkuvuusasian päättymisvuoden loppu
      retention_reason: >-
        JAMKin tiedonohjaussuunnitelma; liikkuvuusjaksojen rahoittajien
        (mm. Euroopan komissio) ohjeet
  - id: transcripts
    connector: db
    table: transcripts
    key: id
    trigger: issued_on
    retain: permanent
    action: archive
    records_plan:
      class_code: '05.01'
      record_type: jamk-transcript
"""


def _catalog(tmp_path: Path, policies: str = POLICIES, **plan_edits: str) -> Path:
    root = tmp_path / "catalog"
    for folder in ("policies", "connectors", "jobs", "records-plans"):
        (root / folder).mkdir(parents=True)
    plan = (ROOT / "records-plans" / "jamk.xml").read_text(encoding="utf-8")
    for old, new in plan_edits.items():
        assert old in plan
        plan = plan.replace(old, new)
    (root / "records-plans" / "jamk.xml").write_text(plan, encoding="utf-8")
    (root / "connectors" / "db.yaml").write_text(
        "id: db\nkind: sql\nurl: sqlite:///db.sqlite\n", encoding="utf-8"
    )
    (root / "policies" / "jamk.yaml").write_text(policies, encoding="utf-8")
    return root


def _drift(root: Path, today: date = TODAY):  # type: ignore[no-untyped-def]
    drift = plan_drift(load_catalog(root), today)
    assert drift is not None
    return drift


def test_a_catalog_that_follows_its_plan(tmp_path: Path) -> None:
    """No findings; both record types holding personal data are covered."""
    drift = _drift(_catalog(tmp_path))
    assert drift.findings == () and drift.errors == []
    assert (drift.personal_record_types, drift.covered, drift.uncovered) == (2, 2, ())
    (plan,) = drift.plans
    assert plan["tos"] == "jamk-tos" and plan["registers"] == ["jamk-mobility"]


def test_no_plan_no_section(tmp_path: Path) -> None:
    """A catalog that follows no plan has no records-plan section."""
    head = POLICIES.split("  records_plan: records-plans")[0]
    first = POLICIES.split("policies:\n", 1)[1].split("    records_plan:")[0]
    root = _catalog(tmp_path, head + "policies:\n" + first)
    assert plan_drift(load_catalog(root), TODAY) is None


@pytest.mark.parametrize(
    ("retain", "message"),
    [("P2Y", "retain P2Y is shorter than the plan's P10Y"),
     ("P12Y", "retain P12Y is longer than the plan's P10Y")],
)  # fmt: skip
def test_period_contradiction_is_an_error(tmp_path: Path, retain: str, message: str) -> None:
    """A period other than the plan's is an error of check, naming file, line and policy."""
    drift = _drift(_catalog(tmp_path, POLICIES.replace("retain: P10Y", f"retain: {retain}")))
    (finding,) = drift.findings
    assert (finding.kind, finding.severity) == ("period", "error")
    assert message in finding.message
    (problem,) = drift.errors
    assert problem.file == "policies/jamk.yaml" and problem.policy == "mobility"
    assert problem.line is not None and message in str(problem)


def test_a_stated_deviation_is_shown_not_an_error(tmp_path: Path) -> None:
    """With deviation: the difference is reported with its reason and check passes."""
    text = POLICIES.replace("retain: P10Y", "retain: P12Y\n    deviation: EU funder's 12 years")
    drift = _drift(_catalog(tmp_path, text))
    (finding,) = drift.findings
    assert finding.severity == "deviation" and finding.deviation == "EU funder's 12 years"
    assert drift.errors == []


def test_deviation_needs_a_citation(tmp_path: Path) -> None:
    """deviation: without records_plan: departs from nothing: a catalog error."""
    text = POLICIES.replace("    action: archive\n", "    action: archive\n    deviation: x\n")
    text = text.replace("    records_plan:\n      class_code: '05.01'\n"
                        "      record_type: jamk-transcript\n", "")  # fmt: skip
    _, problems = read_catalog(_catalog(tmp_path, text))
    assert any(p.key == "deviation" and "departs from nothing" in p.message for p in problems)


def test_permanence_contradiction(tmp_path: Path) -> None:
    """Destroying what the plan keeps permanently is an error; so is keeping permanently
    what the plan keeps for years."""
    destroys = POLICIES.replace("retain: permanent\n    action: archive",
                                "retain: P50Y\n    action: delete")  # fmt: skip
    (finding,) = _drift(_catalog(tmp_path / "a", destroys)).findings
    assert (finding.kind, finding.severity) == ("permanence", "error")
    assert "keeps these records permanently" in finding.message
    keeps = POLICIES.replace("retain: P10Y\n    count_from: year_end\n    action: delete",
                             "retain: permanent\n    action: archive")  # fmt: skip
    (finding,) = _drift(_catalog(tmp_path / "b", keeps)).findings
    assert finding.kind == "permanence" and "the plan says P10Y" in finding.message


def test_start_rule_changed_in_the_plan(tmp_path: Path) -> None:
    """A plan that now counts from another event is a warning naming both events."""
    root = _catalog(tmp_path, **{"Liikkuvuusasian päättymisvuoden loppu":
                                 "Apurahan loppuraportin hyväksyminen"})  # fmt: skip
    (finding,) = _drift(root).findings
    assert (finding.kind, finding.severity) == ("start", "warning")
    assert "Apurahan loppuraportin hyväksyminen" in finding.message
    assert "Liikkuvuusasian päättymisvuoden loppu" in finding.message


def test_legal_basis_changed_in_the_plan(tmp_path: Path) -> None:
    """A plan whose retention reason changed is a warning."""
    root = _catalog(tmp_path, **{"JAMKin tiedonohjaussuunnitelma; liikkuvuus":
                                 "Opetus- ja kulttuuriministeriön ohje; liikkuvuus"})  # fmt: skip
    kinds = {f.kind for f in _drift(root).findings}
    assert kinds == {"legal_basis"}


def test_citing_what_the_plan_no_longer_has(tmp_path: Path) -> None:
    """A record type, or a whole class, gone from the plan is an error; the policy keeps no
    floor from it, and coverage counts what the plan has now."""
    root = _catalog(tmp_path / "a", **{'tos:id="jamk-mobility-case"': 'tos:id="jamk-case-2024"'})
    drift = _drift(root)
    gone = next(f for f in drift.findings if f.kind == "not_in_plan")
    assert gone.severity == "error" and "record type jamk-mobility-case of class 05.04" in (
        gone.message
    )
    assert [u.record_type for u in drift.uncovered] == ["jamk-case-2024"]
    root = _catalog(tmp_path / "b", **{"<tos:Luokitustunnus>05.04<": "<tos:Luokitustunnus>05.09<"})
    gone = next(f for f in _drift(root).findings if f.kind == "not_in_plan")
    assert "cites class 05.04, which the plan jamk-tos version 2019.1 no longer has" in (
        gone.message
    )


def test_citing_another_plan(tmp_path: Path) -> None:
    """A policy citing a plan other than its register's is an error."""
    text = POLICIES.replace("tos: jamk-tos", "tos: xamk-tos")
    (finding,) = _drift(_catalog(tmp_path, text)).findings
    assert finding.kind == "other_plan" and finding.severity == "error"


def test_coverage_counts_enabled_policies(tmp_path: Path) -> None:
    """A disabled policy does not cover its record type: count and list."""
    text = POLICIES.replace("    action: archive\n", "    action: archive\n    enabled: false\n")
    drift = _drift(_catalog(tmp_path, text))
    assert (drift.personal_record_types, drift.covered) == (2, 1)
    (item,) = drift.uncovered
    assert (item.class_code, item.record_type) == ("05.01", "jamk-transcript")


def test_unbound_policy_names_what_is_missing(tmp_path: Path) -> None:
    """A policy imported and not bound is a warning listing exactly its missing keys."""
    text = (
        POLICIES
        + """\
  - id: imported
    enabled: false
    retain: P10Y
    action: delete
    records_plan:
      class_code: '05.04'
      record_type: jamk-mobility-case
"""
    )
    drift = _drift(_catalog(tmp_path, text))
    (finding,) = drift.findings
    assert finding.kind == "unbound" and finding.policy == "jamk-mobility/imported"
    assert "lacks connector, table, trigger" in finding.message


def test_plan_past_its_validity(tmp_path: Path) -> None:
    """A plan past VoimassaoloPaattyyPvm is reported with the date."""
    root = _catalog(tmp_path, **{
        "<tos:VoimassaoloAlkaaPvm>2019-02-01</tos:VoimassaoloAlkaaPvm>":
        "<tos:VoimassaoloAlkaaPvm>2019-02-01</tos:VoimassaoloAlkaaPvm>\n"
        "    <tos:VoimassaoloPaattyyPvm>2025-12-31</tos:VoimassaoloPaattyyPvm>"})  # fmt: skip
    (finding,) = _drift(root).findings
    assert finding.kind == "expired" and "ceased to be valid on 2025-12-31" in finding.message
    assert _drift(root, date(2025, 12, 31)).findings == ()
    assert _drift(root).plans[0]["expired"] is True


def _bound(root: Path, policy: str):  # type: ignore[no-untyped-def]
    return next(b for b in load_catalog(root).policies if b.policy.id == policy)


def test_the_engine_never_destroys_earlier_than_the_plan(tmp_path: Path) -> None:
    """A rule of 2 years under a plan of 10: each record expires when the plan allows, and
    the selection reaches no record the plan still keeps — with a deviation stated too."""
    text = POLICIES.replace("retain: P10Y", "retain: P2Y\n    deviation: shorter on purpose")
    bound = _bound(_catalog(tmp_path, text), "mobility")
    floor = plan_floor(bound)
    assert floor is not None and floor.years == 10
    assert record_expires_on(bound, date(2015, 3, 1)) == date(2026, 1, 1)  # 2016 + 10 years
    selection = selection_for(bound, TODAY)
    assert selection is not None and selection.bound == date(2016, 1, 1)  # triggers in 2015


def test_a_longer_rule_is_not_shortened(tmp_path: Path) -> None:
    """The floor only ever delays: a rule longer than the plan keeps its own dates."""
    bound = _bound(_catalog(tmp_path, POLICIES.replace("retain: P10Y", "retain: P12Y")),
                   "mobility")  # fmt: skip
    assert record_expires_on(bound, date(2015, 3, 1)) == date(2028, 1, 1)


def test_a_permanent_plan_stops_a_destroying_rule(tmp_path: Path) -> None:
    """What the plan keeps permanently is never due to a rule that would destroy it; an
    archiving rule still hands it to the archive."""
    destroys = POLICIES.replace("retain: permanent\n    action: archive",
                                "retain: P1Y\n    action: delete")  # fmt: skip
    bound = _bound(_catalog(tmp_path / "a", destroys), "transcripts")
    assert record_expires_on(bound, date(2000, 1, 1)) is None
    assert selection_for(bound, TODAY) is None
    archives = _bound(_catalog(tmp_path / "b"), "transcripts")
    assert plan_floor(archives) is None
    assert record_expires_on(archives, date(2000, 1, 1)) == date(2000, 1, 1)


def test_a_fixed_last_day_cannot_pass_for_the_plans_period(tmp_path: Path) -> None:
    """until: reads no trigger, so nothing shows the plan's 10 years counted from each record
    have passed: the rule disposes of nothing, and check says so as an error — a stated
    deviation does not lift it. Where the plan's period is 0 years, the last day stands."""
    text = POLICIES.replace(
        "    trigger: closed_on\n    retain: P10Y\n    count_from: year_end\n",
        "    until: 2025-01-01\n    deviation: the project ended\n",
    )
    root = _catalog(tmp_path / "a", text)
    bound = _bound(root, "mobility")
    assert record_expires_on(bound, date(2024, 3, 1)) is None
    assert selection_for(bound, TODAY) is None
    (finding,) = _drift(root).findings
    assert (finding.kind, finding.severity) == ("period", "error")
    assert "until:" in finding.message and "P10Y" in finding.message
    (problem,) = _drift(root).errors
    assert problem.policy == "mobility"
    zero = _catalog(
        tmp_path / "b",
        text,
        **{"<tos:SailytysajanPituusArvo>10<": "<tos:SailytysajanPituusArvo>0<"},
    )
    bound = _bound(zero, "mobility")
    assert record_expires_on(bound, date(2024, 3, 1)) == date(2025, 1, 2)
    assert selection_for(bound, TODAY) is not None


@pytest.fixture(scope="module")
def floor_bound(tmp_path_factory: pytest.TempPathFactory) -> BoundPolicy:
    root = _catalog(tmp_path_factory.mktemp("floor"))
    return next(b for b in load_catalog(root).policies if b.policy.id == "mobility")


@settings(max_examples=200, deadline=None)
@given(
    trigger=st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31)),
    rule_months=st.integers(min_value=0, max_value=400),
    plan_years=st.integers(min_value=0, max_value=30),
    year_end=st.booleans(),
)
def test_floor_property(
    floor_bound: BoundPolicy, trigger: date, rule_months: int,
    plan_years: int, year_end: bool,
) -> None:  # fmt: skip
    """For any trigger, rule and plan: a record falls due on the later of the rule's day and
    the plan's, counted the same way — never before the plan's."""
    from retention.catalog import clock

    bound = floor_bound
    policy = bound.policy.model_copy(update={
        "retain": Retain(duration=Duration(months=rule_months)),
        "count_from": "year_end" if year_end else "event",
    })  # fmt: skip
    record = replace(bound.plan_record, retention=Retention(plan_years, "x"))
    case = replace(bound, policy=policy, plan_record=record)
    count_from = policy.count_from
    own = clock.expires_on(trigger, Duration(months=rule_months), count_from)
    planned = clock.expires_on(trigger, Duration(years=plan_years), count_from)
    assert record_expires_on(case, trigger) == max(own, planned)
