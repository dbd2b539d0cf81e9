"""``retention demo``: the whole cycle on synthetic data, in a throw-away workspace.

The demo copies the catalog into its own directory and runs with an environment of its own
that holds nothing but a demo secret: every ``${VAR:-default}`` takes its default, so a
connector URL set in the operator's shell for production can never be reached by the demo.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

from retention import api
from retention.catalog import clock
from retention.catalog.loading import SETTINGS_FILE, load_catalog
from retention.enforce.archive import packages_in, verify_packages
from retention.errors import UsageError
from retention.filemodes import write_private
from retention.reports.formats import write_report
from retention.workspace import Workspace

MARKER = ".retention-demo"
SECRET_FILE = ".demo-secret"  # noqa: S105 - a file name, not a secret
DEMO_APPROVER = "Demo Records Manager"


@dataclass
class DemoResult:
    workdir: Path
    files: dict[str, Path] = field(default_factory=dict)
    ok: bool = True


def run_demo(
    source: Path,
    workdir: Path,
    as_of: date | None = None,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Rebuild ``workdir`` from ``source`` and run check → plan → run → export → verify."""
    from retention.demo.data import build_demo_shares, build_demo_sources

    source, workdir = source.resolve(), workdir.resolve()
    _prepare(source, workdir)
    secret = secrets.token_hex(32)
    write_private(workdir / SECRET_FILE, f"{secret}\n".encode())
    environ = {"RETENTION_SECRET": secret}
    settings = load_catalog(workdir, environ).settings
    day = as_of or clock.today(settings.timezone)
    result = DemoResult(workdir)

    build_demo_sources(workdir, day)
    build_demo_shares(workdir, day)
    init = api.init(workdir, environ)
    echo(f"demo workspace {workdir} (as of {day}); public key {init.public_key_path}")
    reports = workdir / "reports"
    with Workspace(load_catalog(workdir, environ), environ) as ws:
        notes = api.check(ws)
        echo(f"check: catalog valid, {len(notes)} policies fit their sources")
        _records_plan(ws, day, echo)
        plan, _ = api.plan(ws, as_of=day, report=reports / "plan.json",
                           more_reports=[reports / "plan.html", reports / "plan.csv"])  # fmt: skip
        write_report(ws, plan.plan_id, reports / "plan.fi.html", lang="fi",
                     companions=[reports / "plan.csv"])  # fmt: skip
        for name in ("plan.json", "plan.html", "plan.fi.html", "plan.csv"):
            result.files[name] = reports / name
        due = sum(p.counts.expire for p in plan.policies)
        echo(f"plan {plan.plan_id}: {due} records due")
        for p in plan.policies:
            c = p.counts
            echo(
                f"  {p.name:45} {p.action:9} {p.status:9} scanned {c.scanned:4}  expire "
                f"{c.expire:4}  retain {c.retain:4}  held {c.held:3}  done {c.done:3}"
            )
        api.approve(ws, plan.plan_id, by=DEMO_APPROVER, comment="demo: reviewed plan.html")
        echo(f"approve {plan.plan_id}: by {DEMO_APPROVER}")
        outcome = api.run_plan(ws, plan.plan_id, as_of=day)
        echo(
            f"run --plan {plan.plan_id} ({outcome.run_id}): disposed of {outcome.disposed} "
            f"records (status {outcome.status})"
        )
        again = api.run(ws, as_of=day)
        echo(
            f"second run {again.run_id}: disposed of {again.disposed} records (nothing left to do)"
        )
        for suffix in ("jsonl", "csv", "html", "pdf"):
            path = reports / f"certificates.{suffix}"
            manifest = api.export(ws, path)
            result.files[f"certificates.{suffix}"] = path
        echo(f"export: {manifest['count']} certificates, signed manifest beside each file; "
             "certificates.html/.pdf is the certificate of destruction to sign")  # fmt: skip
        ledger = api.verify_ledger(ws)
        exported = api.verify_file(reports / "certificates.pdf", ws.public_key_path)
        archive_root = ws.catalog.resolve(ws.catalog.settings.archive)
    packages = verify_packages(packages_in(archive_root))
    bad_packages = [path for path, fault in packages.items() if fault]
    echo(f"archive: {len(packages)} BagIt packages in {archive_root}, "
         f"{len(packages) - len(bad_packages)} valid")  # fmt: skip
    result.ok = (
        ledger.ok and exported.ok and not bad_packages
        and outcome.exit_code == 0 and again.disposed == 0
    )  # fmt: skip
    echo(
        f"verify: ledger {'verified' if ledger.ok else 'FAILED'} "
        f"({ledger.certificates} certificates), export "
        f"{'verified' if exported.ok else 'FAILED'} with only the public key"
    )
    for fault in [*ledger.faults, *exported.faults]:
        echo(f"  FAIL {fault}")
    echo("files:")
    for name, path in result.files.items():
        echo(f"  {name:18} {path}")
    echo(
        f"to explore further: export RETENTION_SECRET=$(cat {workdir / SECRET_FILE}) and "
        f"run retention --help commands with --catalog {workdir}"
    )
    return result


def _records_plan(ws: Workspace, day: date, echo: Callable[[str], None]) -> None:
    """The drift section: the shipped catalog states one deviation from its plans (Xamk's
    customer contracts: 10 years as the privacy notice promises, the plan's 6 years being
    the legal minimum) and leaves one record type unenforced (the marketing ban, which is
    marked and kept, never disposed of)."""
    drift = api.records_plan_drift(ws.catalog, day)
    if drift is None:
        return
    echo(f"records plan: {len(drift.plans)} plans (JHS 191); {drift.covered} of "
         f"{drift.personal_record_types} record types holding personal data have an enabled "
         "policy")  # fmt: skip
    for item in drift.uncovered:
        echo(f"  not enforced: {item.tos} {item.class_code} {item.title}")
    for finding in drift.findings:
        why = f"; stated deviation: {finding.deviation}" if finding.deviation else ""
        echo(f"  {finding.severity}: {finding.policy or finding.file}: {finding.message}{why}")


def shipped_catalog() -> AbstractContextManager[Path]:
    """The five-register catalog installed with the package (``retention/demo/shipped``: the
    project's ``policies/``, ``connectors/``, ``jobs/``, ``records-plans/`` and
    ``retention.yaml``), as a folder."""
    return resources.as_file(resources.files("retention.demo") / "shipped")


def _prepare(source: Path, workdir: Path) -> None:
    missing = [d for d in ("policies", "connectors", "jobs") if not (source / d).is_dir()]
    if missing:
        raise UsageError(
            f"{source} is not a catalog (no {', '.join(missing)}/): pass --catalog a catalog "
            "folder, or leave it out for the shipped one"
        )
    if workdir.exists():
        if not (workdir / MARKER).exists():
            raise UsageError(
                f"{workdir} exists and is not a demo workspace; "
                "refusing to replace it (choose another --workdir)"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text(
        "created by retention demo; replaced on each run\n", encoding="utf-8"
    )
    for folder in ("policies", "connectors", "jobs"):
        shutil.copytree(source / folder, workdir / folder)
    if (source / "records-plans").is_dir():  # the records-management plans policies cite
        shutil.copytree(source / "records-plans", workdir / "records-plans")
    if (source / SETTINGS_FILE).exists():
        shutil.copy2(source / SETTINGS_FILE, workdir / SETTINGS_FILE)
