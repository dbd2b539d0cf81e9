"""What falls due when: records counted month by month with the cutoffs a run uses.

One counting function serves ``retention forecast`` and the chart of the HTML plan report,
so the terminal and the page cannot disagree.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from retention.catalog.loading import BoundPolicy
from retention.decide.plan import selection_for
from retention.errors import RetentionError
from retention.workspace import Workspace


@dataclass(frozen=True)
class Forecast:
    """How many records of each policy fall due in each coming month (not yet due today)."""

    as_of: date
    months: list[str]
    """``YYYY-MM`` labels; the first is the rest of the current month."""
    counts: dict[str, list[int]]
    """Policy name (``register/policy``) → records falling due in each month."""
    failures: dict[str, str] = field(default_factory=dict)
    """Policy name → why it could not be counted (only with ``tolerate_failures``)."""

    def by_register(self) -> dict[str, list[int]]:
        """The counts summed per register, in the order the policies came."""
        out: dict[str, list[int]] = {}
        for name, counts in self.counts.items():
            register = name.split("/", 1)[0]
            totals = out.setdefault(register, [0] * len(self.months))
            for i, n in enumerate(counts):
                totals[i] += n
        return out


def forecastable(bound: BoundPolicy) -> bool:
    """Disabled policies and ``review`` policies dispose of nothing, so nothing falls due."""
    return bound.policy.enabled and bound.policy.action != "review"


def month_ends(as_of: date, months: int) -> list[date]:
    """The last day of ``as_of``'s month and of each following month, ``months`` in all."""
    first = as_of.replace(day=1)
    return [first + relativedelta(months=i + 1) - timedelta(days=1) for i in range(months)]


def count_due(
    ws: Workspace,
    policies: Sequence[BoundPolicy],
    months: int,
    as_of: date,
    *,
    tolerate_failures: bool = False,
) -> Forecast:
    """Count in the source, per policy, the records whose first due day falls in each month.

    A record is counted in month *m* when it is a candidate on the last day of *m* but not on
    the last day before it (nor on ``as_of``): the difference of two source-side counts.
    With ``tolerate_failures`` a policy whose source fails is left out and named in
    ``failures`` instead of stopping the whole count.
    """
    ends = month_ends(as_of, months)
    counts: dict[str, list[int]] = {}
    failures: dict[str, str] = {}
    for bound in policies:
        if not forecastable(bound):
            continue
        try:
            connector = ws.connector(bound.policy.connector)
            totals = []
            for when in (as_of, *ends):
                selection = selection_for(bound, when)
                totals.append(
                    0 if selection is None else connector.count(selection, candidates_only=True)
                )
        except RetentionError as exc:
            if not tolerate_failures:
                raise
            failures[bound.name] = str(exc)
            continue
        counts[bound.name] = [later - earlier for earlier, later in itertools.pairwise(totals)]
    return Forecast(as_of, [f"{end:%Y-%m}" for end in ends], counts, failures)
