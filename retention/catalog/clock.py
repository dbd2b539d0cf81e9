"""Retention arithmetic: when a record falls due, and the cutoff that selects due records.

Everything is calendar arithmetic on dates (python-dateutil's ``relativedelta``): adding
P10Y to 29 February gives 28 February, adding P1M to 31 January gives 28/29 February.
Because that addition never goes backwards as the start date grows, the set of due trigger
dates is always "every trigger before some bound" — which is what lets the engine push the
rule into SQL as ``trigger < bound`` instead of reading a table into Python.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

CountFrom = Literal["event", "year_end"]

# ASCII digits only: ``\d`` and ``int()`` also read Arabic-Indic, full-width and other digits.
_DURATION = re.compile(
    r"^P(?:(?P<y>[0-9]+)Y)?(?:(?P<m>[0-9]+)M)?(?:(?P<w>[0-9]+)W)?(?:(?P<d>[0-9]+)D)?$"
)
ONE_DAY = timedelta(days=1)

#: The longest duration the catalog and the command line accept, in years: longer than any
#: records plan keeps a record (for ever is ``retain: permanent``), and short enough that a
#: trigger date plus a duration stays arithmetic the engine can do.
MAX_YEARS = 200
_REFERENCE = date(2000, 1, 1)
_LONGEST = date(2000 + MAX_YEARS, 1, 1)


@dataclass(frozen=True)
class Duration:
    """An ISO-8601 calendar duration of years, months, weeks and days (no time part)."""

    years: int = 0
    months: int = 0
    days: int = 0

    def __post_init__(self) -> None:
        """Every duration, however made, is at most :data:`MAX_YEARS` years in total
        (P200Y, P2400M or P73049D) and not negative."""
        if min(self.years, self.months, self.days) < 0:
            raise ValueError(f"{self!r} is negative")
        quick = (self.years <= MAX_YEARS and self.months <= 12 * MAX_YEARS
                 and self.days <= 366 * MAX_YEARS)  # fmt: skip
        if not quick or _REFERENCE + self.delta > _LONGEST:
            raise _too_long(str(self))

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``P10Y``, ``P6M``, ``P1Y6M``, ``P2W``, ``P0D``; raise ValueError otherwise."""
        _ascii_digits(text)
        match = _DURATION.match(text.strip())
        if match is None or text.strip() == "P":
            raise ValueError(
                f"{text!r} is not an ISO-8601 duration of years, months, weeks or days "
                "(examples: P10Y, P6M, P1Y6M, P0D)"
            )
        parts = {k: _number(v, text) for k, v in match.groupdict().items()}
        return cls(years=parts["y"], months=parts["m"], days=parts["w"] * 7 + parts["d"])

    @functools.cached_property
    def delta(self) -> relativedelta:
        """Built once: a run adds it to the trigger date of every record."""
        return relativedelta(years=self.years, months=self.months, days=self.days)

    def __str__(self) -> str:
        text = "P"
        text += f"{self.years}Y" if self.years else ""
        text += f"{self.months}M" if self.months else ""
        text += f"{self.days}D" if self.days or text == "P" else ""
        return text


def _too_long(text: str) -> ValueError:
    return ValueError(
        f"{text!r} is longer than {MAX_YEARS} years, the longest duration accepted "
        f"(P{MAX_YEARS}Y); a record kept for ever is `retain: permanent`"
    )


def _ascii_digits(text: str) -> None:
    if any(ch.isdigit() and not ch.isascii() for ch in text):
        raise ValueError(f"{text!r}: write numbers with the digits 0-9")


def _number(digits: str | None, text: str) -> int:
    """A matched number; more than nine digits is too long before it is even read."""
    if not digits:
        return 0
    if len(digits) > 9:
        raise _too_long(text)
    return int(digits)


_WORDS = r"[0-9]+\s*(?:days?|weeks?|months?|years?)"
_PERIOD = re.compile(rf"^{_WORDS}(?:(?:\s*,\s*|\s+and\s+|\s+){_WORDS})*$")
_PARTS = re.compile(r"(?P<n>[0-9]+)\s*(?P<unit>days?|weeks?|months?|years?)")


def parse_period(text: str) -> Duration:
    """A period, written one way everywhere (``retain``, settings, ``--cooling-off``): ISO-8601
    (``P10Y``, ``P1Y6M``, ``P14D``) or in words (``10 years``, ``1 year 6 months``,
    ``14 days``, ``2 weeks``); raise ValueError otherwise."""
    _ascii_digits(text)
    spoken = text.strip().lower()
    if text.strip().startswith("P"):
        return Duration.parse(text)  # its own errors say what is wrong with an ISO period
    if _PERIOD.match(spoken) is None:
        try:
            return Duration.parse(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a period: write it like '10 years', '1 year 6 months', "
                "'14 days' or as ISO-8601 (P10Y, P1Y6M, P14D)"
            ) from None
    total = {"day": 0, "week": 0, "month": 0, "year": 0}
    for part in _PARTS.finditer(spoken):
        unit = part["unit"].rstrip("s")
        total[unit] += _number(part["n"], text)
    return Duration(years=total["year"], months=total["month"],
                    days=total["day"] + 7 * total["week"])  # fmt: skip


def clock_start(trigger: date, count_from: CountFrom) -> date:
    """The day the retention clock starts for a record whose trigger date is ``trigger``.

    ``year_end`` is how Finnish records plans count: from the end of the trigger's calendar
    year, i.e. from 1 January of the next year.
    """
    if count_from == "year_end":
        return date(trigger.year + 1, 1, 1)
    return trigger


@functools.lru_cache(maxsize=4096)
def expires_on(trigger: date, retain: Duration, count_from: CountFrom = "event") -> date:
    """The first day on which a record with this trigger date is due for disposal.

    Cached: a table's records share few trigger dates, and calendar arithmetic with
    ``relativedelta`` cost a tenth of a plan's time per record.

    A day past the end of the calendar (a trigger in year 9999, say) is the calendar's last
    day, which no run reaches (runs are dated at most 9000-12-31): such a record is kept.
    """
    try:
        start = clock_start(trigger, count_from)
        result: date = start + retain.delta
    except (OverflowError, ValueError):
        return date.max
    return result


def expires_on_until(until: date) -> date:
    """``until`` is the last day of retention, so the record is due the day after (the
    calendar's last day for ``until: 9999-12-31``, as :func:`expires_on` saturates)."""
    return until + ONE_DAY if until < date.max else date.max


def due_bound(as_of: date, retain: Duration, count_from: CountFrom = "event") -> date | None:
    """The smallest trigger date that is *not* due on ``as_of``: due ⇔ ``trigger < bound``.

    Returns None when no trigger date at all can be due (only possible for dates before
    year 1). The answer is exact: for every date ``t``,
    ``expires_on(t) <= as_of`` ⇔ ``t < due_bound(as_of)``.
    """
    if count_from == "year_end":
        # expires_on depends on the trigger's year only: find the last due year.
        for year in range(min(as_of.year, date.max.year - 1), 0, -1):
            if expires_on(date(year, 1, 1), retain, count_from) <= as_of:
                return date(year + 1, 1, 1)
        return None
    try:
        candidate: date = as_of - retain.delta
    except (OverflowError, ValueError):
        return None
    # Calendar clipping (31 Jan + 1M = 28 Feb) makes subtraction inexact by a few days;
    # step to the exact boundary. Both loops run at most a handful of times.
    while expires_on(candidate, retain) > as_of:
        candidate -= ONE_DAY
    while True:
        following = candidate + ONE_DAY
        if expires_on(following, retain) > as_of:
            return following
        candidate = following


def today(timezone: str, now: datetime | None = None) -> date:
    """Today's date in the catalog's time zone (retention days are local days)."""
    moment = now if now is not None else datetime.now(ZoneInfo(timezone))
    return moment.astimezone(ZoneInfo(timezone)).date()


def start_of_day(day: date, timezone: str) -> datetime:
    """The moment (UTC) at which ``day`` begins in ``timezone``."""
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC)
