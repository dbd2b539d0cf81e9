"""A plan report's format, named by its extension, and the stored plan written in it.

JSON and CSV are written by :mod:`retention.reports.report`, HTML by
:mod:`retention.reports.report_html`; both read the stored plan's rows from ``report``, so this
module, above the two, is the only one that knows all three formats.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

from retention.catalog.plan_drift import plan_drift
from retention.decide.plan import load_plan
from retention.errors import UsageError
from retention.evidence.effects import register_json
from retention.filemodes import private_dirs
from retention.reports.report import plan_effects, policy_summary, write_csv, write_json
from retention.reports.report_html import render
from retention.state.database import as_utc
from retention.workspace import Workspace

FORMATS = (".json", ".csv", ".html")


def writable_report(path: Path) -> None:
    """Refuse a report path before any work is done: a known format, a writable place."""
    if path.suffix.lower() not in FORMATS:
        raise UsageError(f"unknown report format {path.suffix!r}: use one of {', '.join(FORMATS)}")
    try:
        private_dirs(path.parent)  # a folder retention makes is its owner's only
    except OSError as exc:
        raise UsageError(f"cannot write the report to {path}: {exc.strerror}") from exc
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise UsageError(f"cannot write the report to {path}")


def write_report(
    ws: Workspace,
    plan_id: str,
    path: Path,
    *,
    lang: str | None = None,
    companions: Sequence[Path] = (),
) -> Path:
    """Write the stored plan ``plan_id`` to ``path`` in the format its extension names.

    ``lang`` chooses the HTML page's language; ``companions`` are other reports of the same
    plan (the JSON or CSV that list every record), which the HTML page points to.
    """
    writable_report(path)
    suffix = path.suffix.lower()
    header, policies = load_plan(ws, plan_id)
    summary = [policy_summary(row) for row in policies]
    changes = plan_effects(ws, summary)
    for item in summary:
        effect = changes.get((item["register"], item["policy"]))
        item["changes"] = effect.as_json() if effect is not None else None
    meta = {
        "plan_id": header.plan_id,
        "as_of": header.as_of.isoformat(),
        "catalog": header.catalog,
        "kind": header.kind,
        # Who made the plan (issuer, subject, name, role, authenticated): they cannot approve it.
        "made_by": json.loads(header.made_by) if header.made_by else None,
    }
    drift = plan_drift(ws.catalog, header.as_of)  # the "records plan" section
    if suffix == ".json":
        registers = {
            item["register"]: register_json(ws.catalog.registers.get(item["register"]))
            for item in summary
        }
        rp = drift.as_dict() if drift is not None else None
        write_json(ws, path, {**meta, "registers": registers, "records_plan": rp}, summary)
    elif suffix == ".csv":
        write_csv(ws, path, plan_id, summary, changes)
    else:
        page = {
            **meta,
            "created_at": f"{as_utc(header.created_at).astimezone(UTC):%Y-%m-%d %H:%M}",
            "job": header.job,
            "approved_by": header.approved_by,
            "approved_at": (
                f"{as_utc(header.approved_at).astimezone(UTC):%Y-%m-%d}"
                if header.approved_at
                else None
            ),
        }
        render(ws, path, page, summary, lang=lang, companions=companions, changes=changes,
               records_plan=drift)  # fmt: skip
    return path
