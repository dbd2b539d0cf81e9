"""The HTML plan report: one self-contained page a records manager reads or prints.

Everything the page shows comes from the stored plan, except the forecast chart, which is
counted in the sources when the page is written (by :mod:`retention.decide.forecast`, as
``retention forecast`` counts). The per-record tables stream from the state database through
Jinja2's ``generate()`` and stop at ``HTML_RECORD_LIMIT`` rows per policy and list: a printed page
holds about 40 rows, so 200 rows (five pages) are enough to check a policy by eye, and a plan
of millions of records stays a readable page; the JSON and CSV reports list every record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from retention.catalog.plan_drift import PlanDrift
from retention.decide.forecast import Forecast, count_due, forecastable
from retention.errors import UsageError
from retention.evidence.effects import Effect
from retention.filemodes import open_private
from retention.i18n import LANGUAGES, Language, Messages, describe_rule_fi
from retention.reports.chart import StackedBars, stacked_bars
from retention.reports.report import plan_effects, plan_rows
from retention.workspace import Workspace

#: Rows of each per-policy record table (due, held) in the HTML page; see the module docstring.
HTML_RECORD_LIMIT = 200
FORECAST_MONTHS = 12
#: Plan statuses that are not problems.
_FINE = frozenset({"planned", "completed"})


def report_language(ws: Workspace, lang: str | None) -> Language:
    """``--lang``, else the catalog's ``report_language`` setting (English by default)."""
    chosen = lang or ws.catalog.settings.report_language
    for known in LANGUAGES:
        if chosen == known:
            return known
    raise UsageError(f"--lang {chosen!r}: the report speaks {', '.join(LANGUAGES)}")


@dataclass
class RecordTable:
    """One policy's due or held records, as many as the page shows and how many it leaves."""

    register: str
    policy: str
    rule: str
    action: str
    total: int
    shown: int
    rows: Iterator[tuple[dict[str, Any], bool]]

    @property
    def hidden(self) -> int:
        return self.total - self.shown


@dataclass
class RegisterSummary:
    id: str
    name: str | None
    controller: str | None
    source: str | None
    statutory: bool
    policies: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)


COUNTS = ("scanned", "expire", "retain", "held", "done")


def summarise(ws: Workspace, summary: list[dict[str, Any]]) -> list[RegisterSummary]:
    """The plan's policies grouped by register, with the register's catalog entry."""
    out: dict[str, RegisterSummary] = {}
    for item in summary:
        rid = item["register"]
        if rid not in out:
            known = ws.catalog.registers.get(rid)
            out[rid] = RegisterSummary(
                id=rid,
                name=known.name if known else None,
                controller=known.controller if known else None,
                source=known.source if known else None,
                statutory=bool(known and known.statutory),
                totals=dict.fromkeys(COUNTS, 0),
            )
        group = out[rid]
        group.policies.append(item)
        for name in COUNTS:
            group.totals[name] += int(item["counts"].get(name, 0))
    return list(out.values())


def rule_text(ws: Workspace, item: dict[str, Any], language: Language) -> str:
    """The stored rule sentence; in Finnish when the catalog still holds that exact rule."""
    if language == "en":
        return str(item["rule"])
    for bound in ws.catalog.policies:
        same = (bound.register.id, bound.policy.id) == (item["register"], item["policy"])
        if same and bound.policy.fingerprint() == item["policy_sha256"]:
            return describe_rule_fi(bound.policy)
    return str(item["rule"])


def plan_forecast(ws: Workspace, meta: dict[str, Any], summary: list[dict[str, Any]]) -> Forecast:
    """The forecast of the plan's own policies from its day; a failing source is named."""
    chosen = {(item["register"], item["policy"]) for item in summary}
    bound = [
        b for b in ws.catalog.policies if (b.register.id, b.policy.id) in chosen and forecastable(b)
    ]
    return count_due(
        ws, bound, FORECAST_MONTHS, date.fromisoformat(meta["as_of"]), tolerate_failures=True
    )


def render(
    ws: Workspace,
    path: Path,
    meta: dict[str, Any],
    summary: list[dict[str, Any]],
    *,
    lang: str | None = None,
    companions: Sequence[Path] = (),
    record_limit: int | None = None,
    changes: Mapping[tuple[str, str], Effect] | None = None,
    records_plan: PlanDrift | None = None,
) -> None:
    """Write the page chunk by chunk; the record tables are read while it is written.

    ``changes`` is what each policy's action changes
    (:func:`retention.reports.report.plan_effects`); a policy without one is said to be no
    longer in the catalog as planned.
    """
    limit = HTML_RECORD_LIMIT if record_limit is None else record_limit
    from jinja2 import Environment, PackageLoader, select_autoescape

    t = Messages(report_language(ws, lang))
    if changes is None:
        changes = plan_effects(ws, summary)
    summary = [{**item, "rule": rule_text(ws, item, t.language)} for item in summary]
    env = Environment(
        loader=PackageLoader("retention.reports", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = t.number
    template = env.get_template("plan.html.j2")

    def tables(decision: str) -> list[RecordTable]:
        out = []
        for item in summary:
            total = int(item["counts"].get(decision, 0))
            if total == 0:
                continue
            rows = plan_rows(
                ws, meta["plan_id"], item["register"], item["policy"], [decision], limit
            )
            shown = min(total, limit)
            out.append(RecordTable(item["register"], item["policy"], item["rule"],
                                   item["action"], total, shown, rows))  # fmt: skip
        return out

    forecast: Forecast | None = None
    chart: StackedBars | None = None
    if meta["kind"] != "erasure-dry-run":
        forecast = plan_forecast(ws, meta, summary)
        chart = stacked_bars(forecast.months, forecast.by_register())
    problems = [
        {"name": f"{p['register']}/{p['policy']}", "status": p["status"], "message": p["message"]}
        for p in summary
        if p["status"] not in _FINE
    ]
    if forecast is not None:
        problems += [
            {"name": name, "status": "forecast", "message": t("forecast_failed", message=message)}
            for name, message in forecast.failures.items()
        ]
    holds = {h.hold_id: h for h in ws.holds.all()}
    totals = {name: sum(int(p["counts"].get(name, 0)) for p in summary) for name in COUNTS}
    context = {
        "t": t,
        "lang": t.language,
        "meta": meta,
        "registers": summarise(ws, summary),
        "totals": totals,
        "counts": COUNTS,
        "forecast": forecast,
        "chart": chart,
        "due": tables("expire"),
        "held": tables("held"),
        "holds": holds,
        "problems": problems,
        "companions": [_relative(c, path) for c in companions],
        "key_text": _key_text,
        "records_plan": records_plan,
        "changes": {
            f"{register}/{policy}": effect.sentences(t)
            for (register, policy), effect in changes.items()
        },
    }
    with open_private(path) as out:
        for chunk in template.generate(**context):
            out.write(chunk)


def _key_text(key: str | list[str]) -> str:
    """A single key as it is; a composite key as its JSON list, as the CSV writes it."""
    return key if isinstance(key, str) else json.dumps(key, ensure_ascii=False)


def _relative(target: Path, page: Path) -> str:
    """A companion report as a link from the page: its name when beside it, else its path."""
    if target.resolve().parent == page.resolve().parent:
        return target.name
    return target.resolve().as_uri()
