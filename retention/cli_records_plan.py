"""``retention plan-import``: policies from the records-management plan (TOS, JHS 191)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from retention import cli_output as output
from retention.cli_output import output_options

if TYPE_CHECKING:
    from rich.console import Console

    from retention.catalog.loading import Catalog


@click.command("plan-import")
@click.argument("plan_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--catalog",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("RETENTION_CATALOG", "."),
    show_default="$RETENTION_CATALOG or the current directory",
    help="Catalog directory the policies are for.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the policy files to write or update (default: the catalog's policies/).",
)
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@output_options
def plan_import(plan_file: Path, catalog: Path, out: Path | None, dry_run: bool) -> None:
    """Write policy skeletons from a JHS 191 TOS (.xml) or helerm's Excel template (.xlsx):
    one file per class, one disabled policy per record type holding personal data. Run it
    again on a newer plan to update what came from the plan; what you bound is kept."""
    from retention.catalog.plan_import import import_plan
    from retention.catalog.records_plan import load_records_plan

    root = catalog.resolve()
    target = out if out is not None else root / "policies"
    try:
        reference = str(plan_file.resolve().relative_to(root))
    except ValueError:
        reference = str(plan_file.resolve())
    plan = load_records_plan(plan_file, reference)
    result = import_plan(plan, target, reference, write=not dry_run)
    console = output.console()
    types = list(plan.record_types())
    personal = sum(1 for _, r in types if r.personal)
    console.print(
        f"records-management plan {plan.id} version {plan.version} ({plan.profile}): "
        f"{len(plan.classes)} classes, {len(types)} record types, {personal} with personal data",
        markup=False,
    )
    sections = (
        ("new policy (disabled until bound)", result.created),
        ("changed", result.changed),
        ("kept (a person decided otherwise)", result.kept),
        ("no longer in the plan", result.gone),
    )
    for label, lines in sections:
        for line in lines:
            console.print(f"{label}: {line}", markup=False)
    verb = "would write" if dry_run else "wrote"
    for path in result.written:
        console.print(f"{verb} {path}", markup=False)
    if not (result.created or result.changed):
        console.print("the policies already follow this plan", markup=False)
    elif result.created:
        console.print(
            "next: bind each new policy (connector, table, key, trigger), set enabled: true, "
            "and run `retention check`",
            markup=False,
        )
    output.emit(
        "plan-import",
        {
            "tos": plan.id, "version": plan.version, "profile": plan.profile,
            "record_types": len(types), "personal": personal, "created": result.created,
            "changed": result.changed, "kept": result.kept, "gone": result.gone,
            "written": result.written, "dry_run": dry_run,
        },
    )  # fmt: skip


def show_drift(catalog: Catalog, console: Console) -> dict[str, Any] | None:
    """``retention check``'s "records plan" section: printed, and returned for ``--json``."""
    from retention import api
    from retention.i18n import Messages

    drift = api.records_plan_drift(catalog)
    if drift is None:
        return None
    t = Messages("en")
    console.print("records plan:", markup=False)
    for plan in drift.plans:
        state = " — NO LONGER VALID" if plan["expired"] else ""
        console.print(f"  {plan['tos']} version {plan['version']} ({plan['file']}, "
                      f"{plan['profile']}){state}", markup=False)  # fmt: skip
    console.print(f"  coverage: {drift.covered} of {drift.personal_record_types} record types "
                  "holding personal data have an enabled policy", markup=False)  # fmt: skip
    for item in drift.uncovered:
        console.print(f"  not enforced: {item.tos} {item.class_code} {item.record_type} "
                      f"({item.title})", markup=False)  # fmt: skip
    for finding in drift.findings:
        where = finding.policy or finding.file or ""
        why = f" — deviation: {finding.deviation}" if finding.deviation else ""
        console.print(f"  {finding.severity}: {where}: {finding.text(t)}{why}", markup=False)
    return drift.as_dict()
