"""Retention arithmetic (SPEC §3): when a record falls due, and the bound that selects due rows."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from retention.catalog.clock import (
    CountFrom,
    Duration,
    clock_start,
    due_bound,
    expires_on,
    expires_on_until,
    today,
)


def month_end(year: int, month: int) -> date:
    """The last day of ``month`` in ``year``."""
    return date(year, month, calendar.monthrange(year, month)[1])


def leap_day(year: int) -> date:
    """29 February of the first leap year at or after ``year``."""
    while not calendar.isleap(year):
        year += 1
    return date(year, 2, 29)


# 29 February, month ends and year boundaries are where calendar arithmetic clips; the
# strategies below make hypothesis try them far more often than uniform dates would.
TRICKY_DATES: list[date] = [
    date(1900, 2, 28),  # 1900 is not a leap year
    date(1904, 2, 29),
    date(1996, 2, 29),
    date(2000, 2, 29),
    date(2012, 2, 29),
    date(2016, 2, 29),
    date(2024, 2, 29),
    date(2100, 2, 28),  # nor is 2100
    date(2104, 2, 29),
    date(2023, 1, 31),
    date(2024, 1, 31),
    date(2024, 3, 31),
    date(2024, 8, 31),
    date(2025, 12, 31),
    date(2026, 1, 1),
    date(2199, 12, 31),
]
dates = st.one_of(
    st.sampled_from(TRICKY_DATES),
    st.builds(month_end, st.integers(1900, 2200), st.integers(1, 12)),
    st.builds(leap_day, st.integers(1900, 2196)),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)),
)
durations = st.one_of(
    st.sampled_from([Duration(years=10), Duration(months=1), Duration(), Duration(years=1)]),
    st.builds(
        Duration,
        years=st.integers(0, 30),
        months=st.integers(0, 24),
        days=st.integers(0, 400),
    ),
)
count_froms: st.SearchStrategy[CountFrom] = st.sampled_from(["event", "year_end"])


# --- SPEC §3 examples ---------------------------------------------------------------------


def test_year_end_counts_from_first_of_january_after_the_trigger() -> None:
    """Ended 2014-07-01, P10Y, year_end expires on 2025-01-01."""
    assert expires_on(date(2014, 7, 1), Duration.parse("P10Y"), "year_end") == date(2025, 1, 1)


def test_event_clock_from_leap_day_clips_to_28_february() -> None:
    """Ended 2016-02-29, P10Y, event expires on 2026-02-28."""
    assert expires_on(date(2016, 2, 29), Duration.parse("P10Y"), "event") == date(2026, 2, 28)


def test_calendar_addition_clips_leap_day() -> None:
    """2012-02-29 + P10Y = 2022-02-28 (calendar arithmetic, not 3652 days)."""
    assert expires_on(date(2012, 2, 29), Duration.parse("P10Y")) == date(2022, 2, 28)


def test_until_is_the_last_day_of_retention() -> None:
    """until 2022-06-30 makes the record due on 2022-07-01."""
    assert expires_on_until(date(2022, 6, 30)) == date(2022, 7, 1)


def test_zero_duration_expires_on_the_trigger_day() -> None:
    """P0D makes a record due on its trigger day itself, and not the day before."""
    trigger = date(2019, 5, 31)
    assert expires_on(trigger, Duration.parse("P0D")) == trigger
    assert due_bound(trigger, Duration.parse("P0D")) == trigger + timedelta(days=1)
    assert due_bound(trigger - timedelta(days=1), Duration.parse("P0D")) == trigger


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [(date(2023, 1, 31), date(2023, 2, 28)), (date(2024, 1, 31), date(2024, 2, 29))],
)
def test_one_month_from_31_january_is_the_end_of_february(trigger: date, expected: date) -> None:
    """31 January + P1M is the last day of February, in common and leap years."""
    assert expires_on(trigger, Duration.parse("P1M")) == expected


def test_clock_start_for_year_end_is_next_new_year() -> None:
    """count_from year_end starts the clock on 1 January after the trigger, even on 1 January."""
    assert clock_start(date(2014, 1, 1), "year_end") == date(2015, 1, 1)
    assert clock_start(date(2014, 12, 31), "year_end") == date(2015, 1, 1)
    assert clock_start(date(2014, 7, 1), "event") == date(2014, 7, 1)


# --- Duration.parse -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "years", "months", "days"),
    [
        ("P10Y", 10, 0, 0),
        ("P6M", 0, 6, 0),
        ("P1Y6M", 1, 6, 0),
        ("P2W", 0, 0, 14),
        ("P0D", 0, 0, 0),
        (" P20Y ", 20, 0, 0),
    ],
)
def test_duration_parse_accepts_calendar_durations(
    text: str, years: int, months: int, days: int
) -> None:
    """Duration.parse reads years, months, weeks (as 7 days) and days."""
    assert Duration.parse(text) == Duration(years=years, months=months, days=days)


@pytest.mark.parametrize("text", ["10Y", "P", "P1H", "PT1H", "P-1Y", "", "P1.5Y", "p10y", "P10X"])
def test_duration_parse_rejects_everything_else(text: str) -> None:
    """Durations without P, empty, with a time part, negative or fractional raise ValueError."""
    with pytest.raises(ValueError, match="ISO-8601"):
        Duration.parse(text)


@pytest.mark.parametrize("text", ["P10Y", "P6M", "P1Y6M", "P0D", "P14D", "P1Y2M3D"])
def test_duration_str_round_trips(text: str) -> None:
    """str(Duration.parse(x)) gives back a duration that parses to the same value."""
    parsed = Duration.parse(text)
    assert Duration.parse(str(parsed)) == parsed


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=500)
@given(trigger=dates, retain=durations, as_of=dates, count_from=count_froms)
def test_due_bound_selects_exactly_the_due_triggers(
    trigger: date, retain: Duration, as_of: date, count_from: CountFrom
) -> None:
    """expires_on(t) <= as_of holds exactly when t < due_bound(as_of): SQL selects by bound."""
    bound = due_bound(as_of, retain, count_from)
    due = expires_on(trigger, retain, count_from) <= as_of
    assert due == (bound is not None and trigger < bound)


@given(first=dates, second=dates, retain=durations, count_from=count_froms)
def test_expires_on_never_decreases_as_the_trigger_grows(
    first: date, second: date, retain: Duration, count_from: CountFrom
) -> None:
    """A later trigger date never expires earlier than an earlier one."""
    early, late = sorted((first, second))
    assert expires_on(early, retain, count_from) <= expires_on(late, retain, count_from)


@given(trigger=dates, retain=durations, count_from=count_froms)
def test_expires_on_is_never_before_the_clock_starts(
    trigger: date, retain: Duration, count_from: CountFrom
) -> None:
    """No record expires before its retention clock has started."""
    assert expires_on(trigger, retain, count_from) >= clock_start(trigger, count_from)


@given(first=dates, day_of_year=st.integers(0, 365), retain=durations)
def test_year_end_gives_one_expiry_day_per_trigger_year(
    first: date, day_of_year: int, retain: Duration
) -> None:
    """With count_from year_end, every trigger date of one calendar year expires the same day."""
    other = date(first.year, 1, 1) + timedelta(days=day_of_year)
    if other.year != first.year:  # day 365 exists only in leap years
        other = date(first.year, 12, 31)
    assert expires_on(first, retain, "year_end") == expires_on(other, retain, "year_end")


# --- today --------------------------------------------------------------------------------


@freeze_time("2026-11-21 23:30:00")
def test_today_is_the_local_day_of_the_catalog_time_zone() -> None:
    """At 2026-11-21 23:30 UTC it is already 22 November in Helsinki but still the 21st in UTC."""
    assert today("Europe/Helsinki") == date(2026, 11, 22)
    assert today("UTC") == date(2026, 11, 21)


def test_today_converts_a_given_moment_to_the_time_zone() -> None:
    """An explicit aware moment is converted to the catalog's zone before taking its date."""
    moment = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)
    assert today("Europe/Helsinki", now=moment) == date(2026, 11, 22)
    assert today("America/New_York", now=moment) == date(2026, 11, 21)
