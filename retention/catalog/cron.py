"""Standard five-field cron expressions as APScheduler triggers, with cron's meaning.

APScheduler numbers weekdays from Monday and fires a fixed-hour job twice in the repeated
hour of a daylight-saving change; this module translates and corrects both, so a schedule in
``jobs/`` means what it would mean to cron. The catalog validates schedules with the very
same rules the scheduler fires by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron: 0 (and 7) = Sunday
_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, {name: n for n, name in enumerate(_MONTHS, start=1)}),
    _Field("day-of-week", 0, 7, {name: n for n, name in enumerate(_CRON_DAYS)}),
)
_ITEM = re.compile(
    r"(?:(?P<star>\*)|(?P<start>[0-9]+|[a-z]+)(?:-(?P<end>[0-9]+|[a-z]+))?)(?:/(?P<step>[0-9]+))?"
)


def _value(field: _Field, token: str, expression: str) -> int:
    value = int(token) if token.isdigit() else field.names.get(token)
    if value is None or not field.low <= value <= field.high:
        allowed = f"{field.low}-{field.high}"
        if field.names:
            allowed += f" or {', '.join(field.names)}"
        raise ValueError(f"{expression!r}: {field.name} field: {token!r} is not one of {allowed}")
    return value


def _expand(field: _Field, text: str, expression: str) -> tuple[str, set[int]]:
    """Validate one cron field; return it in APScheduler's notation and the values it covers."""
    parts: list[str] = []
    values: set[int] = set()
    for item in text.split(","):
        found = _ITEM.fullmatch(item.lower())
        if found is None:
            raise ValueError(
                f"{expression!r}: {field.name} field: {item!r} is not a cron value, range, "
                "list or step (like 5, 1-5, 1,3,5, */15 or 1-20/5)"
            )
        step = int(found["step"]) if found["step"] else 1
        if step < 1:
            raise ValueError(f"{expression!r}: {field.name} field: a step must be at least 1")
        if found["star"]:
            low, high = field.low, field.high
            parts.append("*" if step == 1 else f"*/{step}")
        else:
            low = _value(field, found["start"], expression)
            if found["end"] is None:
                if found["step"]:
                    raise ValueError(
                        f"{expression!r}: {field.name} field: {item!r}: a step needs * or a "
                        "range before it (like */2 or 1-31/2)"
                    )
                high = low
                parts.append(str(low))
            else:
                high = _value(field, found["end"], expression)
                if high < low:
                    raise ValueError(
                        f"{expression!r}: {field.name} field: range {item!r} runs backwards"
                    )
                parts.append(f"{low}-{high}" + (f"/{step}" if found["step"] else ""))
        values.update(range(low, high + 1, step))
    return ",".join(parts), values


class CrontabTrigger(CronTrigger):  # type: ignore[misc]  # apscheduler has no type hints
    """A :class:`CronTrigger` that behaves like cron on the night the clocks go back.

    APScheduler 3 fires a fixed-hour job (``30 3 * * *``) twice in the repeated hour, and
    asked for the time after a firing at exactly that firing can hand the same time back;
    this trigger fires such a job once, at the first pass, and always moves forward. A job
    with ``*`` in the hour field keeps firing by elapsed time through the repeated hour.
    """

    __slots__ = ()

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        hourly = str(self.fields[self.FIELD_NAMES.index("hour")]) == "*"
        for _ in range(1000):  # a step or two at most; bounded all the same
            behind = (
                previous_fire_time is not None and fire is not None and (fire <= previous_fire_time)
            )
            if fire is None or not (behind or (not hourly and _second_pass(fire))):
                break
            # Search again from the next second, given in UTC so the fold is unambiguous.
            fire = super().get_next_fire_time(None, fire.astimezone(UTC) + timedelta(seconds=1))
        return fire


def _second_pass(moment: datetime) -> bool:
    """Whether ``moment`` is the second occurrence of a wall-clock time repeated by DST."""
    wall = moment.replace(tzinfo=None)
    first = wall.replace(tzinfo=moment.tzinfo, fold=0).utcoffset()
    second = wall.replace(tzinfo=moment.tzinfo, fold=1).utcoffset()
    if first is None or second is None or first <= second:
        return False  # not repeated (or a gap: the clocks went forward)
    return moment.utcoffset() == second


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """An APScheduler trigger for a standard five-field crontab expression in ``timezone``.

    Day of week follows cron: 0 and 7 are Sunday, 1 is Monday (APScheduler 3 itself counts
    0 = Monday, so numbers are translated to day names). Cron fires when *either* day field
    matches if both are restricted; APScheduler only when both do, so such an expression is
    refused rather than run on the wrong days. Raises ValueError naming the field.
    """
    fields = expression.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"{expression!r} is not a five-field cron expression "
            "(minute hour day-of-month month day-of-week, like '30 2 * * *')"
        )
    parsed = [_expand(spec, text, expression) for spec, text in zip(_FIELDS, fields, strict=True)]
    (minute, _), (hour, _), (day, _), (month, _), (weekday, days) = parsed
    if not fields[2].startswith("*") and not fields[4].startswith("*"):
        raise ValueError(
            f"{expression!r}: day-of-month and day-of-week fields are both restricted; cron "
            "runs the job when either matches, which one trigger cannot express: use two jobs"
        )
    if weekday != "*":
        weekday = ",".join(_CRON_DAYS[n] for n in sorted({n % 7 for n in days}))
    try:
        trigger: CronTrigger = CrontabTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=timezone
        )
    except (ValueError, LookupError) as exc:  # an unknown time zone is a LookupError
        raise ValueError(f"{expression!r} in {timezone!r}: {exc}") from exc
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise ValueError(f"{expression!r}: day-of-month field: no such day in the month(s) given")
    return trigger
