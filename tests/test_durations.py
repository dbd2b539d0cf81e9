"""Durations are bounded (200 years) and written in ASCII digits, refused at load time; date
arithmetic at the ends of the calendar never crashes a plan, nor skips its other policies."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from retention import api
from retention.catalog import clock
from retention.catalog.clock import (
    MAX_YEARS,
    CountFrom,
    Duration,
    due_bound,
    expires_on,
    parse_period,
)
from retention.workspace import Workspace
from tests.conftest import AS_OF
from tests.test_catalog import assert_at, line_of, make_catalog, only_problem, policy_problem
from tests.test_cli import explain, on
from tests.test_cli import make_catalog as cli_catalog


@pytest.mark.parametrize("text", ["P200Y", "P2400M", "P199Y11M30D", "P73049D", "P10Y"])
def test_durations_up_to_200_years_parse(text: str) -> None:
    """200 years in total, however it is written, is the longest accepted duration."""
    assert Duration.parse(text).years <= MAX_YEARS


@pytest.mark.parametrize(
    "text", ["P201Y", "P9999Y", "P99999Y", "P2401M", "P200Y1D", "P73050D", "P99999999999999Y"]
)
def test_durations_beyond_200_years_are_refused(text: str) -> None:
    """Anything longer than 200 years is a ValueError saying so, however many digits."""
    with pytest.raises(ValueError, match="longer than 200 years"):
        Duration.parse(text)


@pytest.mark.parametrize("text", ["P١٠Y", "P１０Y", "P1٠M", "P߁D"])
def test_only_ascii_digits_make_a_duration(text: str) -> None:
    """Arabic-Indic, full-width or NKo digits, which int() would read, are refused."""
    with pytest.raises(ValueError, match="digits 0-9"):
        Duration.parse(text)
    with pytest.raises(ValueError):
        parse_period(text)


@pytest.mark.parametrize("text", ["١٤ days", "99999 years", "2401 months"])
def test_periods_in_words_are_bounded_and_ascii(text: str) -> None:
    """`14 days` style periods obey the same rules."""
    with pytest.raises(ValueError):
        parse_period(text)


def test_a_catalog_retaining_p9999y_from_year_end_is_refused_at_retain(tmp_path: Path) -> None:
    """The issue's `retain: P9999Y` with `count_from: year_end`: a problem at the retain key
    (file, line, policy), not a crash at plan time."""
    problem, text = policy_problem(tmp_path, retain="P9999Y", count_from="year_end")
    assert_at(problem, "retain", line_of(text, "retain:"))
    assert "longer than 200 years" in problem.message


def test_a_catalog_with_non_ascii_digits_is_refused(tmp_path: Path) -> None:
    """`retain: P١٠Y` is a problem at the retain key."""
    problem, text = policy_problem(tmp_path, retain="P١٠Y")
    assert_at(problem, "retain", line_of(text, "retain:"))
    assert "digits 0-9" in problem.message


def test_settings_periods_are_bounded(tmp_path: Path) -> None:
    """`plan_expires_after: 99999 years` in retention.yaml is a problem naming the file."""
    root = make_catalog(tmp_path, {"retention.yaml": "plan_expires_after: 99999 years\n"})
    problem = only_problem(root)
    assert problem.file == "retention.yaml" and problem.key == "plan_expires_after"


def test_the_command_line_refuses_an_unbounded_cooling_off(tmp_path: Path) -> None:
    """`approve --cooling-off "99999 years"` exits 2 before anything is approved."""
    cat = cli_catalog(tmp_path)
    proc = on(cat, "approve", "P20261122-00000000", "--by", "R", "--cooling-off", "99999 years")
    assert proc.returncode == 2, explain(proc)
    assert "longer than 200 years" in proc.stderr


# --- date arithmetic at the ends of the calendar --------------------------------------------

ENDS = st.one_of(
    st.dates(min_value=date(9700, 1, 1)),
    st.dates(max_value=date(300, 1, 1)),
    st.sampled_from([date.max, date.min, date(9999, 12, 1), date(9799, 12, 31)]),
    st.dates(),
)
LONG = st.one_of(
    st.sampled_from([Duration(years=MAX_YEARS), Duration(months=12 * MAX_YEARS), Duration()]),
    st.builds(
        Duration,
        years=st.integers(0, MAX_YEARS - 1),
        months=st.integers(0, 11),
        days=st.integers(0, 31),
    ),
)
COUNT_FROMS: st.SearchStrategy[CountFrom] = st.sampled_from(["event", "year_end"])
#: The as-of days the engine accepts.
AS_OFS = st.one_of(
    st.dates(min_value=date(1000, 1, 1), max_value=date(9000, 12, 31)),
    st.sampled_from([date(9000, 12, 31), date(1000, 1, 1)]),
)


@settings(max_examples=400)
@given(trigger=ENDS, retain=LONG, count_from=COUNT_FROMS)
def test_expires_on_never_overflows_and_never_precedes_the_trigger(
    trigger: date, retain: Duration, count_from: CountFrom
) -> None:
    """Any trigger date a source can hold, any accepted duration: a date, never an error; past
    the end of the calendar it is the last day (never reached by a run)."""
    assert expires_on(trigger, retain, count_from) >= trigger


@settings(max_examples=400)
@given(first=ENDS, second=ENDS, retain=LONG, count_from=COUNT_FROMS)
def test_expires_on_stays_monotonic_at_the_ends(
    first: date, second: date, retain: Duration, count_from: CountFrom
) -> None:
    """A later trigger never expires earlier, even where the arithmetic saturates."""
    early, late = sorted((first, second))
    assert expires_on(early, retain, count_from) <= expires_on(late, retain, count_from)


@settings(max_examples=400)
@given(trigger=ENDS, retain=LONG, as_of=AS_OFS, count_from=COUNT_FROMS)
def test_due_bound_stays_exact_at_the_ends(
    trigger: date, retain: Duration, as_of: date, count_from: CountFrom
) -> None:
    """For every accepted as-of day, due ⇔ trigger < due_bound, also for triggers whose
    expiry lies beyond the calendar."""
    bound = due_bound(as_of, retain, count_from)
    due = expires_on(trigger, retain, count_from) <= as_of
    assert due == (bound is not None and trigger < bound)


def test_until_at_the_last_day_of_the_calendar_does_not_overflow() -> None:
    """`until: 9999-12-31` keeps the record to the end of the calendar."""
    assert clock.expires_on_until(date.max) == date.max


def insert_contract(ws: Workspace, ended_on: date) -> None:
    with ws.connector("crm").engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            sa.text("INSERT INTO contracts (site, case_no, contract_type, ended_on) "
                    "VALUES ('Z', 'C-9999', 'customer', :d)"),
            {"d": ended_on},
        )  # fmt: skip


def test_a_trigger_in_year_9999_is_kept_and_the_other_policies_plan(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A contract ended on 9999-12-31 under P10Y from year end: `explain` used to crash with
    ValueError; it is kept, due on the calendar's last day, and every policy is planned."""
    with Workspace.open(catalog, environ) as ws:
        insert_contract(ws, date(9999, 12, 31))
        why = api.explain(ws, "customer-contracts", ["Z", "C-9999"], as_of=AS_OF)
        made, _ = api.plan(ws, as_of=AS_OF)
        outcome = api.run(ws, policies=["customer-contracts"], as_of=AS_OF)
    assert why.decision == "retain" and why.expires_on == date.max
    assert [p.status for p in made.policies] == ["planned"] * 4
    contracts = next(p for p in made.policies if p.policy == "customer-contracts")
    assert contracts.counts.scanned == 4 and contracts.counts.expire == 2
    assert outcome.exit_code == 0 and outcome.disposed == 2


def test_an_overflow_in_one_policy_does_not_skip_the_others(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Belt and braces: should date arithmetic still overflow in one policy, that policy
    fails (naming no value) and the plan and the run go on with the rest."""
    real = clock.expires_on

    def overflowing(trigger: date, retain: Duration, count_from: Any = "event") -> date:
        if retain == Duration(years=10):  # customer-contracts only
            raise OverflowError("date value out of range")
        return real(trigger, retain, count_from)

    monkeypatch.setattr(clock, "expires_on", overflowing)
    with Workspace.open(catalog, environ) as ws:
        made, _ = api.plan(ws, as_of=AS_OF)
        outcome = api.run(ws, as_of=AS_OF)
    for result in (made.policies, outcome.policies):
        statuses = {p.policy: p.status for p in result}
        assert statuses.pop("customer-contracts") == "failed"
        assert set(statuses.values()) <= {"planned", "completed"}
    failed = next(p for p in outcome.policies if p.policy == "customer-contracts")
    assert "date arithmetic" in (failed.message or "")
    assert outcome.exit_code == 4
