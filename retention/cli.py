"""The ``retention`` command line: parse, call :mod:`retention.api`, print, map exit codes.

Exit codes (SPEC §5): 0 success · 1 unexpected failure · 2 invalid catalog, arguments or
input · 3 a safety valve stopped a policy · 4 some policies failed, others completed ·
5 another run holds a lock this run needs.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from retention import cli_output as output
from retention.cli_output import output_options
from retention.errors import EXIT_INVALID, EXIT_UNEXPECTED, CatalogError, RetentionError

if TYPE_CHECKING:
    from rich.console import Console

    from retention.catalog.clock import Duration
    from retention.decide.approval import PlanStatus
    from retention.decide.plan import PolicyPlan
    from retention.enforce.execute import RunOutcome
    from retention.enforce.replay import ReplayRecord
    from retention.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])


def _console(stderr: bool = False) -> Console:
    """User text is never markup; with --json or --quiet standard output stays empty."""
    return output.console(stderr)


def _configure_logs() -> None:
    from retention import logs

    logs.configure(level="warning" if output.mode().quiet else "info")


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-22") from None
    if not date(1000, 1, 1) <= day <= date(9000, 12, 31):
        raise click.BadParameter(f"{value} is outside the years 1000-9000 the engine computes")
    return day


def _parse_period(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> Duration | None:
    if value is None:
        return None
    from retention.catalog.clock import parse_period

    try:
        return parse_period(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def catalog_option(func: F) -> F:
    return click.option(
        "--catalog",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("RETENTION_CATALOG", "."),
        show_default="$RETENTION_CATALOG or the current directory",
        help="Catalog directory (policies/, connectors/, jobs/, retention.yaml).",
    )(func)


def as_of_option(func: F) -> F:
    return click.option(
        "--as-of",
        callback=_parse_date,
        metavar="YYYY-MM-DD",
        help="Decide as of this day (default: today in the catalog's time zone).",
    )(func)


def _workspace(catalog: Path) -> Workspace:
    from retention.workspace import Workspace

    _configure_logs()
    return Workspace.open(catalog)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Dates are written YYYY-MM-DD. Exit codes: 0 success; 1 unexpected failure, or "
        "verification failed; 2 invalid catalog, arguments or input (nothing was changed); "
        "3 a safety valve stopped a policy; 4 some policies failed, the others completed; "
        "5 another run holds a lock this run needs. Shell completion: eval "
        '"$(_RETENTION_COMPLETE=bash_source retention)" in ~/.bashrc (zsh_source, '
        "fish_source for those shells)."
    ),
)
@click.version_option(package_name="retention")
def cli() -> None:
    """Enforce retention schedules: dispose of personal data on time and prove it."""


@cli.command()
@catalog_option
@click.option(
    "--generate-secret",
    is_flag=True,
    help="With RETENTION_SECRET unset: make a new random secret in keys/retention-secret "
    "(mode 0600, never printed) and record it as this installation's.",
)
def init(catalog: Path, generate_secret: bool) -> None:
    """Create settings, state database and signing key pair where missing; into an empty
    catalog also a working example register (with a small SQLite source) and a .gitignore.
    Then prints the next steps."""
    from retention import api

    result = api.init(catalog, generate_secret=generate_secret)
    out = _console()
    for path in result.example:
        out.print(f"example:  {path} (created)", markup=False)
    if result.gitignore is not None:
        out.print(f"git:      {result.gitignore} keeps keys/, *.db, reports/ and archive/ out of "
                  "the repository", markup=False)  # fmt: skip
    out.print(
        f"settings: {catalog / 'retention.yaml'}"
        + (" (created)" if result.settings_created else " (kept)")
    )
    out.print(f"state:    {result.state}")
    out.print(f"secret:   RETENTION_SECRET fingerprint {result.secret}")
    out.print(
        f"public key ({'created' if result.key_created else 'kept'}): {result.public_key_path}"
    )
    out.print(result.public_key_pem.rstrip(), markup=False)
    out.print(f"pinned key id: {result.key_id}")
    from retention.evidence import signing

    own = signing.key_id(signing.load_public(result.public_key_path))
    if own != result.key_id:
        out.print(f"WARNING: this key (id {own}) is not the pinned key: runs will refuse to sign "
                  "with it; restore the pinned key, or see `retention key rotate`")  # fmt: skip
    where = "" if catalog == Path() else f" --catalog {shlex.quote(str(catalog))}"
    if result.secret_file is not None:
        step_one = (f'export RETENTION_SECRET="$(cat {shlex.quote(str(result.secret_file))})"'
                    "   # in every shell and job running retention; keep a copy safe")  # fmt: skip
    elif result.secret == "not set":  # noqa: S105 - what became of it, not a secret
        step_one = ("export RETENTION_SECRET=...   # at least 32 random characters, the same "
                    "for every command; or run `retention init --generate-secret`")  # fmt: skip
    else:
        step_one = "RETENTION_SECRET is set and recorded: keep it set, the same, for every command"
    out.print("\nNext steps:")
    out.print(f"  1. {step_one}", markup=False)
    out.print(f"  2. retention check{where}   # the catalog against its sources", markup=False)
    out.print(f"  3. retention plan{where} --report plan.html   # a dry run: what is due",
              markup=False)  # fmt: skip
    if result.example:
        out.print("Then replace the example in policies/, connectors/ and jobs/ with your "
                  "registers (docs/catalog.md).")  # fmt: skip


@cli.group()
def key() -> None:
    """The signing key: pinned at init, changed only by a signed rotation."""


@key.command("rotate")
@catalog_option
def key_rotate(catalog: Path) -> None:
    """Make a new signing key pair and record it as the successor of the current key, signed
    by both; the old pair is kept beside it under its key id."""
    from retention import api

    with _workspace(catalog) as ws:
        rotated = api.rotate_key(ws)
        public = ws.public_key_path
    out = _console()
    out.print(f"rotated the signing key {rotated['previous']} -> {rotated['key_id']} "
              f"(from ledger seq {int(str(rotated['ledger_seq'])) + 1})")  # fmt: skip
    out.print(f"public key: {public}", markup=False)
    out.print(f"old key kept as {rotated['retired']}", markup=False)


@cli.command()
@catalog_option
@output_options
def check(catalog: Path) -> None:
    """Validate the catalog against its sources; exit 2 listing every problem."""
    from retention import api

    _configure_logs()
    ws, notes = api.check_catalog(catalog)
    out = _console()
    for note in notes:
        out.print(f"ok  {note}", markup=False)
    records_plan = show_drift(ws.catalog, out)
    out.print(
        f"catalog {ws.catalog.root} is valid: {len(ws.catalog.policies)} policies, "
        f"{len(ws.catalog.sources)} connectors, {len(ws.catalog.jobs)} jobs",
        markup=False,
    )
    output.emit("check", {
        "valid": True, "catalog": str(ws.catalog.root), "notes": notes,
        "policies": len(ws.catalog.policies), "connectors": len(ws.catalog.sources),
        "jobs": len(ws.catalog.jobs), "records_plan": records_plan,
    })  # fmt: skip


@cli.command()
@catalog_option
@click.option("--job", help="Plan the policies of this job.")
@click.option(
    "--policy", "policies", multiple=True, help="REGISTER/POLICY, id or glob; repeatable."
)
@as_of_option
@click.option(
    "--report",
    "reports",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report: .json, .csv or .html; repeat for several of the same plan.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "fi"]),
    help="Language of an .html report (default: report_language in retention.yaml, else en).",
)
@output_options
def plan(
    catalog: Path,
    job: str | None,
    policies: Sequence[str],
    as_of: date | None,
    reports: Sequence[Path],
    lang: str | None,
) -> None:
    """Dry run: decide every record, store the plan, change nothing."""
    from retention import api
    from retention.observe.observation import Observation

    with Observation(catalog, job, run=job is not None) as obs, _workspace(catalog) as ws:
        result, _ = api.plan(
            ws, job=job, policies=policies, as_of=as_of, report=reports[0] if reports else None,
            lang=lang, more_reports=reports[1:],
        )  # fmt: skip
        # A plan made here waits for approval like a review job's: its records managers are
        # told (when notify: is set and something is due), as they would be by the scheduler.
        obs.plan_waiting(result, reports[0] if reports else None)
        obs.finished(_plan_code(result.policies))
    out = _console()
    _table(out, f"Plan {result.plan_id} as of {result.as_of}", result.policies)
    for written in reports:
        out.print(f"report: {written}", markup=False)
    from retention.decide.problems import TROUBLED

    troubled = any(p.status in TROUBLED for p in result.policies)
    output.emit("plan", {
        "plan_id": result.plan_id, "as_of": result.as_of, "exit_code": 4 if troubled else 0,
        "reports": [str(r) for r in reports], "policies": output.policies(result.policies),
    })  # fmt: skip
    if troubled:
        sys.exit(4)


@cli.command()
@catalog_option
@click.option("--job", help="Run the policies of this job.")
@click.option(
    "--policy", "policies", multiple=True, help="REGISTER/POLICY, id or glob; repeatable."
)
@click.option(
    "--plan",
    "plan_id",
    help="Execute exactly this approved plan: its records still due and unchanged, once.",
)
@as_of_option
@output_options
def run(
    catalog: Path,
    job: str | None,
    policies: Sequence[str],
    plan_id: str | None,
    as_of: date | None,
) -> None:
    """Enforce: dispose of due records and write a certificate for each."""
    from retention import api
    from retention.observe.observation import Observation
    from retention.progress import progress_bars

    if plan_id is not None and (job or policies):
        raise click.UsageError("--plan runs exactly the approved plan: give no --job or --policy")
    with Observation(catalog, job) as obs, _workspace(catalog) as ws:
        if plan_id is not None:
            with progress_bars(sys.stderr.isatty() and output.mode().human):
                outcome = api.run_plan(ws, plan_id, as_of=as_of)
            obs.finished(outcome.exit_code)
            _print_run(_console(), outcome)
            output.emit("run", output.run_summary(outcome))
            sys.exit(outcome.exit_code)
        if job and not policies and ws.catalog.job(job).mode != "enforce":
            from retention.scheduler import run_job

            mode = ws.catalog.job(job).mode
            obs.cancel()  # the scheduler's run observes itself
            ws.close()  # the scheduler's run opens the catalog itself, as it does when it fires
            code = run_job(str(catalog), job)  # its facts are in its JobFinished log line
            output.emit("run", {"job": job, "mode": mode, "exit_code": code})
            sys.exit(code)
        with progress_bars(sys.stderr.isatty() and output.mode().human):
            outcome = api.run(ws, job=job, policies=policies, as_of=as_of)
        obs.finished(outcome.exit_code)
    _print_run(_console(), outcome)
    output.emit("run", output.run_summary(outcome))
    sys.exit(outcome.exit_code)


@cli.command()
@catalog_option
@click.argument("plan_id", metavar="PLAN")
@click.option("--by", "by", required=True, help="Who approves (a name, recorded as given).")
@click.option("--comment", help="Why, or on what condition; recorded with the approval.")
@click.option(
    "--cooling-off",
    callback=_parse_period,
    help="Wait this long after approving before the plan may run ('2 days', P2D); "
    "default: the catalog's approval_cooling_off.",
)
def approve(
    catalog: Path, plan_id: str, by: str, comment: str | None, cooling_off: Duration | None
) -> None:
    """A records manager approves a stored dry-run plan, so `run --plan` may execute it."""
    from retention import api

    with _workspace(catalog) as ws:
        found = api.approve(ws, plan_id, by=by, comment=comment, cooling_off=cooling_off)
        zone = ws.catalog.settings.timezone
    out = _console()
    review = found.review
    if review is not None and not review.complete:
        out.print(f"approval of plan {found.plan_id} by {by} recorded; it still needs "
                  f"{' and '.join(review.missing)}", markup=False)  # fmt: skip
        return
    out.print(f"approved plan {found.plan_id} ({found.expire} records to dispose of) by "
              f"{found.approved_by}", markup=False)  # fmt: skip
    if found.runnable_after is not None and found.state == "cooling-off":
        out.print(f"cooling off: it may run from {_local(found.runnable_after, zone)}")
    out.print(f"it expires at {_local(found.expires_at, zone)}; run it with "
              f"`retention run --plan {found.plan_id}`", markup=False)  # fmt: skip


@cli.command("plans")
@catalog_option
@click.option("--job", help="Only the plans of this job.")
@click.option(
    "--state",
    type=click.Choice(
        ["pending", "approved", "cooling-off", "executed", "expired", "stale", "rejected"]
    ),
    help="Only plans in this state.",
)
def plans_(catalog: Path, job: str | None, state: str | None) -> None:
    """Stored dry-run plans and where each stands: pending, approved, executed, ..."""
    from retention import api

    with _workspace(catalog) as ws:
        found = api.plans(ws, job=job, state=state)  # type: ignore[arg-type]
        zone = ws.catalog.settings.timezone
    out = _console()
    if out.is_terminal:
        _plans_table(out, found, zone)
    else:
        for p in found:
            click.echo("\t".join(_plan_fields(p, zone)))  # tab-separated: names have spaces
    if not found:
        out.print("no plans" + (f" in state {state}" if state else ""))


def _plan_fields(p: PlanStatus, zone: str) -> list[str]:
    """One plan as the columns of `retention plans`."""
    if p.state == "executed":
        detail = f"run={p.executed_run}"
    elif p.state == "cooling-off":
        detail = f"runnable-from={_local(p.runnable_after, zone)}"
    elif p.state == "stale":
        detail = "secret-rotated" if p.before_rotation else "changed=" + ",".join(p.stale)
    elif p.state == "rejected" and p.review is not None and p.review.rejection is not None:
        detail = f"rejected-by={p.review.rejection.by.label}"
    elif p.state == "pending" and p.review and (p.review.approvals or p.review.required.four_eyes):
        detail = f"needs={' and '.join(p.review.missing)}"
    else:
        detail = f"expires={_local(p.expires_at, zone)}"
    return [
        p.plan_id, p.state, f"job={p.job or '-'}", f"as-of={p.as_of}",
        f"made={_local(p.created_at, zone)}", f"expire={p.expire}",
        f"approved-by={_approvers(p)}", f"review={_review(p)}", detail,
    ]  # fmt: skip


def _approvers(p: PlanStatus) -> str:
    """Who approved so far (the names, as recorded)."""
    review = p.review
    if review is None or not review.approvals:
        return p.approved_by or "-"
    counted = review.counted
    return ", ".join(dict.fromkeys(a.by.name for a in counted)) or "-"


def _review(p: PlanStatus) -> str:
    """Approvals given/required, ``+archivist`` where one is required, and how many of
    those given are unauthenticated (typed at a command line); ``rejected``."""
    review = p.review
    if review is None:
        return "-"
    if review.rejected:
        return "rejected"
    text = f"{len(review.counted)}/{review.required.people}"
    text += "+archivist" if review.required.archivist else ""
    typed = sum(not a.by.authenticated for a in review.approvals)
    return text + (f",{typed} unauthenticated" if typed else "")


def _plans_table(out: Console, found: Sequence[PlanStatus], zone: str) -> None:
    from rich.table import Table

    table = Table(
        "plan", "state", "job", "as of", "made", "expire", "approved by", "review", "detail"
    )
    for p in found:
        fields = _plan_fields(p, zone)
        table.add_row(*(f.split("=", 1)[-1] for f in fields[:-1]), fields[-1])
    out.print(table)


def _local(moment: object, zone: str) -> str:
    """A stored UTC moment in the catalog's time zone, to the minute."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not isinstance(moment, datetime):
        return "-"
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%dT%H:%M%z}"


@cli.command()
@catalog_option
@click.option(
    "--runs",
    "limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many of the latest runs to list.",
)
def status(catalog: Path, limit: int) -> None:
    """The last runs and what they did, and anything left unfinished.

    Per run: the approved plan it executed (and its approver), records disposed of, held by
    a hold, and skipped as changed since the plan; then unfinished intents, live locks and
    the ledger's end.
    """
    from rich.table import Table

    from retention import api

    with _workspace(catalog) as ws:
        found = api.status(ws, limit)
    out = _console()
    table = Table()
    for column in ("run", "job", "started (UTC)", "status", "exit", "plan executed", "disposed",
                   "held", "changed", "policies"):  # fmt: skip
        table.add_column(column, overflow="fold")  # wrapped, never cut: ids matter
    live = [lock for lock in found.locks if str(lock["name"]).startswith(("job:", "policy:"))]
    for run in found.runs:
        policies = run["policies"]
        assert isinstance(policies, dict)
        state = str(run["status"])
        if state == "running" and not live:
            state = "interrupted (no live holder)"

        def total(field: str, policies: dict[str, Any] = policies) -> str:
            return str(sum(int(p.get(field, 0)) for p in policies.values()))

        started = run["started_at"]
        executed = run["executed_plan"]
        table.add_row(
            str(run["run_id"]),
            str(run["job"] or ""),
            f"{started:%Y-%m-%d %H:%M:%S}" if started else "",
            state,
            "" if run["exit_code"] is None else str(run["exit_code"]),
            f"{executed} (approved by {run['approved_by']})" if executed else "-",
            total("disposed"),
            total("held"),
            total("changed"),
            _tally(str(p.get("status")) for p in policies.values()),
        )
    out.print(table)
    for name, count in found.pending_intents.items():
        out.print(f"unfinished: {count} intents of {name} wait for its next run to be reconciled")
    for lock in found.locks:
        lease = lock.get("lease_until")
        ends = f", lease ends {lease:%Y-%m-%d %H:%M:%S} UTC" if isinstance(lease, datetime) else ""
        out.print(f"locked: {lock['name']} by {lock['owner']}, last sign of life "
                  f"{lock['heartbeat_at']:%Y-%m-%d %H:%M:%S} UTC{ends}")  # fmt: skip
    checkpoint = found.last_checkpoint
    signed = f", last checkpoint at seq {checkpoint['last_seq']}" if checkpoint else ""
    out.print(f"ledger: {found.certificates} certificates{signed}")


@cli.command()
@catalog_option
@click.option(
    "--misfire-grace-time",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds a missed firing (scheduler down or busy) may be late and still run, once.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    help="Serve Prometheus metrics on this port at /metrics (default: metrics_port in "
    "retention.yaml; 0 picks a free port).",
)
def scheduler(catalog: Path, misfire_grace_time: int, metrics_port: int | None) -> None:
    """Long-running: fire the jobs of jobs/ on their schedules; SIGHUP reloads, SIGTERM stops."""
    from retention import logs
    from retention.scheduler import Scheduler

    logs.configure()
    served = Scheduler(catalog, misfire_grace_time=misfire_grace_time, metrics_port=metrics_port)
    sys.exit(served.serve())


@cli.command()
@catalog_option
@click.argument("policy")
@click.argument("key", nargs=-1, required=True)
@as_of_option
def explain(catalog: Path, policy: str, key: Sequence[str], as_of: date | None) -> None:
    """Why the record KEY (one value per key column) of POLICY is kept, due, held or done."""
    from retention import api

    with _workspace(catalog) as ws:
        found = api.explain(ws, policy, key, as_of)
    out = _console()
    out.print(f"{found.policy} record {' / '.join(found.key)}")
    out.print(f"  rule: {found.rule}" + (f" ({found.legal_basis})" if found.legal_basis else ""))
    out.print(f"  reference: {found.record_ref}")
    if not found.found:
        out.print(
            "  not in the source"
            + (
                ": disposed of, see the certificate below"
                if found.certificate
                else ", and never certified"
            )
        )
        if not found.certificate:
            _console(stderr=True).print(
                f"error: {found.policy} has no record with key {' / '.join(found.key)}, and "
                "no certificate says one was disposed of (check the key for a typo)"
            )
            sys.exit(EXIT_INVALID)
    elif found.secret:
        out.print(f"  decision: {found.decision} (a secret person: nothing more is shown)")
    else:
        out.print(f"  trigger date: {found.trigger_date or 'none (the clock has not started)'}")
        out.print(f"  first day due: {found.expires_on or '-'}")
        out.print(f"  decision: {found.decision}" + (f" ({found.reason})" if found.reason else ""))
        if found.hold is not None:
            h = found.hold
            out.print(f"  held by {h.hold_id}: {h.reason} (placed by {h.placed_by}"
                      + (f", until {h.until}" if h.until else "") + ")")  # fmt: skip
    if found.certificate is not None:
        c = found.certificate
        out.print(f"  certificate {c['certificate_id']}: {c['action']} at {c['executed_at']} "
                  f"in run {c['run_id']}")  # fmt: skip


@cli.command()
@catalog_option
@click.option(
    "--months",
    type=click.IntRange(1, 120),
    default=12,
    show_default=True,
    help="How many calendar months to count, starting with the rest of the as-of month.",
)
@as_of_option
@output_options
def forecast(catalog: Path, months: int, as_of: date | None) -> None:
    """What falls due when, per policy, in the coming months."""
    from rich.table import Table

    from retention import api

    with _workspace(catalog) as ws:
        found = api.forecast(ws, months, as_of)
    output.emit("forecast", {
        "as_of": found.as_of, "months": list(found.months),
        "policies": {name: dict(zip(found.months, counts, strict=True))
                     for name, counts in found.counts.items()},
    })  # fmt: skip
    out = _console()
    # Names tell the rows apart: never cut them to a common prefix. A table of months fits
    # when each month column is 4 wide plus padding; on a narrower screen, a line per policy.
    longest = max((len(name) for name in found.counts), default=6)
    if longest + 2 + 6 * len(found.months) <= out.width:
        table = Table(title=f"Falling due after {found.as_of}", box=None, pad_edge=False)
        table.add_column("policy", min_width=longest, no_wrap=True)
        for label in found.months:  # "2027-01" on two lines
            table.add_column(label.replace("-", "\n", 1), justify="right", min_width=4)
        for name, counts in found.counts.items():
            table.add_row(name, *(str(n) if n else "·" for n in counts))
        out.print(table)
        return
    out.print(f"Falling due after {found.as_of}, by month:")
    for name, counts in found.counts.items():
        due = [f"{month} {n}" for month, n in zip(found.months, counts, strict=True) if n]
        out.print(f"{name}: {', '.join(due) if due else '-'}", markup=False)


@cli.group()
def secret() -> None:
    """The installation's RETENTION_SECRET, which every record reference depends on."""


@secret.command("rotate")
@catalog_option
@click.option(
    "--new-from-env",
    "new_from_env",
    required=True,
    metavar="VARIABLE",
    help="The environment variable holding the new secret (RETENTION_SECRET holds the current).",
)
def secret_rotate(catalog: Path, new_from_env: str) -> None:
    """Replace RETENTION_SECRET: carry subject holds and certified records to the new one."""
    from retention import api

    with _workspace(catalog) as ws:
        done = api.rotate_secret(ws, new_from_env)
    out = _console()
    out.print(
        f"rotated: read {done.records} records; {done.certified} certified records stay done; "
        f"{done.holds} subject holds carried over",
        markup=False,
    )
    out.print(
        f"now set RETENTION_SECRET to the value of {new_from_env} wherever retention runs "
        "(scheduler included): the old secret is refused from here on",
        markup=False,
    )


def _by_option(name: str, verb: str) -> Callable[[F], F]:
    """``--by``: who acts on a hold, recorded in its history (default: the login name)."""
    return click.option(
        "--by",
        name,
        default=lambda: os.environ.get("USER", "unknown"),
        show_default="$USER",
        help=f"Who {verb} the hold, as recorded in the hold's history.",
    )


@cli.group()
def hold() -> None:
    """Legal holds: records that must not be disposed of."""


@hold.command("add")
@catalog_option
@click.option("--register", help="Hold every record of this register (its id in policies/).")
@click.option("--policy", help="REGISTER/POLICY or a unique policy id.")
@click.option("--subject", help="Data subject identifier (stored only as a keyed reference).")
@click.option(
    "--record",
    "record",
    multiple=True,
    help="Record key; repeat once per column of a composite key. Needs --policy.",
)
@click.option(
    "--reason",
    required=True,
    help="Why (a case number, a court order): shown in plans, reports and hold list. Name no "
    "person here: it is stored and printed as typed.",
)
@click.option(
    "--until", callback=_parse_date, metavar="YYYY-MM-DD", help="Last day the hold is in force."
)
@_by_option("placed_by", "places")
@click.option(
    "--force",
    is_flag=True,
    help="Place the hold even if it covers no record today (one for records yet to come).",
)
def hold_add(
    catalog: Path,
    register: str | None,
    policy: str | None,
    subject: str | None,
    record: Sequence[str],
    reason: str,
    until: date | None,
    placed_by: str,
    force: bool,
) -> None:
    """Place a hold by register, policy, data subject and/or record key.

    Says how many records the hold covers today, per policy, as the source compares (a
    caseless column: any case). The hold covers exactly those: the key as the source stores
    it, and every spelling of the subject the source stores. A hold that covers none (a
    mistyped subject or key, most often) is refused with exit 2 unless --force is given, or
    confirmed at the prompt on a terminal; so are an --until before today and a key the
    source cannot name.
    """
    from retention import api

    with _workspace(catalog) as ws:

        def place(force: bool) -> api.PlacedHold:
            return api.place_hold(
                ws, reason=reason, placed_by=placed_by, register=register, policy=policy,
                subject=subject, record=list(record), until=until, force=force,
            )  # fmt: skip

        try:
            placed = place(force)
        except api.HoldCoversNothing as exc:
            if not (sys.stdin.isatty() and sys.stderr.isatty()):
                raise
            _console(stderr=True).print(f"warning: {exc}", style="bold yellow")
            click.confirm("Place the hold all the same?", abort=True, err=True)
            placed = place(True)
    out = _console()
    counted = ", ".join(
        f"{name} {'?' if n is None else n}" for name, n in placed.covered.items() if n != 0
    )
    out.print(
        f"placed hold {placed.hold.hold_id}: it covers {placed.total} record(s) today"
        + (f" ({counted})" if counted else ""),
        markup=False,
    )
    if len(placed.holds) > 1:
        out.print(
            f"  stored as {len(placed.holds)} entries, one per spelling of the "
            f"{'subject' if subject else 'key'} the source stores and counts as the one given: "
            f"{', '.join(h.hold_id for h in placed.holds)} "
            f"(`hold release {placed.hold.hold_id}` releases them all)",
            markup=False,
        )
    if placed.total == 0:
        _console(stderr=True).print(
            "warning: this hold covers no record today", style="bold yellow"
        )
    for name, why in placed.uncounted.items():
        _console(stderr=True).print(
            f"warning: could not count the records of {name} (source unreachable: {why}); "
            "the hold applies there all the same",
            style="yellow",
            markup=False,
        )


@hold.command("list")
@catalog_option
@click.option("--all", "show_all", is_flag=True, help="Include released and lapsed holds.")
def hold_list(catalog: Path, show_all: bool) -> None:
    """List holds in force (or all of them)."""
    from rich.table import Table

    from retention.catalog import clock

    with _workspace(catalog) as ws:
        today = clock.today(ws.catalog.settings.timezone)
        found = ws.holds.all() if show_all else ws.holds.active(today)
    zone = ws.catalog.settings.timezone
    table = Table()
    for column in ("hold", "register", "policy", "subject", "record", "until"):
        table.add_column(column, no_wrap=True)
    for column in ("reason", "placed", "released"):  # who, then when (catalog's time zone)
        table.add_column(column, overflow="fold")
    for h in found:
        table.add_row(
            h.hold_id,
            h.register or "",
            h.policy or "",
            (h.subject_ref or "")[:12],
            h.record_key or "",
            h.until.isoformat() if h.until else "",
            h.reason + (f"\n(excluded from plan {h.plan_id})" if h.plan_id else ""),
            _who_when(h.placed_by, h.placer, _local(h.placed_at, zone)),
            _who_when(h.released_by, h.releaser, _local(h.released_at, zone))
            if h.released_at
            else "",
        )
    _console().print(table)


def _who_when(name: str | None, identity: dict[str, Any] | None, when: str) -> str:
    """A hold list cell: who, when, and "(unauthenticated)" where a name was only typed."""
    typed = identity is None or not identity.get("authenticated")
    return f"{name}\n{when}" + ("\n(unauthenticated)" if typed else "")


@hold.command("report")
@catalog_option
@as_of_option
def hold_report(catalog: Path, as_of: date | None) -> None:
    """What each hold in force is keeping from disposal today (a stored dry run)."""
    from retention import api

    with _workspace(catalog) as ws:
        plan_id, coverage = api.hold_report(ws, as_of)
    out = _console()
    for entry in coverage:
        h = entry.hold
        scope = ", ".join(
            f"{name} {value}" for name, value in (
                ("register", h.register), ("policy", h.policy),
                ("subject", h.subject_ref[:12] if h.subject_ref else None),
                ("record", h.record_key),
            ) if value
        )  # fmt: skip
        total = sum(len(keys) for keys in entry.records.values())
        out.print(f"{h.hold_id}  {scope}  reason: {h.reason}  by {h.placed_label}"
                  + (f"  until {h.until}" if h.until else "")
                  + (f"  (excluded from plan {h.plan_id})" if h.plan_id else ""),
                  markup=False)  # fmt: skip
        out.print(f"  keeps {total} due record{'s' if total != 1 else ''} from disposal")
        for policy, keys in entry.records.items():
            shown = ", ".join(k if isinstance(k, str) else "/".join(k) for k in keys[:20])
            more = f" and {len(keys) - 20} more" if len(keys) > 20 else ""
            out.print(f"    {policy}: {shown}{more}")
    if not coverage:
        out.print("no holds in force")
    out.print(f"plan {plan_id}")


@hold.command("release")
@catalog_option
@click.argument("hold_id")
@_by_option("released_by", "releases")
def hold_release(catalog: Path, hold_id: str, released_by: str) -> None:
    """Release a hold (the release is recorded; the hold stays in the history)."""
    from retention import api

    with _workspace(catalog) as ws:
        api.release_hold(ws, hold_id, by=released_by)
    _console().print(f"released hold {hold_id}", markup=False)


@cli.group()
def certificates() -> None:
    """Compliance evidence of what was disposed of."""


@certificates.command("export")
@catalog_option
@click.option(
    "--since", callback=_parse_date, metavar="YYYY-MM-DD", help="First day (executed_at, UTC)."
)
@click.option(
    "--until", callback=_parse_date, metavar="YYYY-MM-DD", help="Last day (executed_at, UTC)."
)
@click.option("--register", help="Only the certificates of this register.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Export file: .jsonl or .csv, or a certificate of destruction to sign: .html or .pdf "
    "(its certificates beside it in .certificates.jsonl). A signed .manifest.json is written "
    "beside it.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "fi"]),
    help="Language of a certificate of destruction (.html, .pdf); default: report_language "
    "in retention.yaml, else en. `retention verify` reads either.",
)
def certificates_export(
    catalog: Path,
    since: date | None,
    until: date | None,
    register: str | None,
    out: Path,
    lang: str | None,
) -> None:
    """Export certificates with a signed manifest."""
    from retention import api
    from retention.evidence.export import check_format, companion_path, manifest_path

    check_format(out)  # before the workspace is opened: nothing is written for a bad name
    with _workspace(catalog) as ws:
        manifest = api.export(ws, out, since, until, register, lang)
    companion = f"\ncertificates: {companion_path(out)}" if "certificates" in manifest else ""
    _console().print(
        f"exported {manifest['count']} certificates to {out}{companion}\n"
        f"manifest: {manifest_path(out)}",
        markup=False,
    )


import retention.cli_proofs  # noqa: E402  (attaches `certificates prove`)


@cli.command()
@catalog_option
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM public key (default: the one beside the catalog's signing key).",
)
@click.option(
    "--since",
    "older",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An earlier complete export: check that FILE's tree extends its tree (nothing "
    "certified before was altered or dropped).",
)
@output_options
def verify(
    catalog: Path, file: Path | None, public_key: Path | None, older: Path | None = None
) -> None:
    """Verify the certificate ledger, or an export file with only the public key."""
    from retention import api

    out = _console()
    if file is not None:
        if public_key is None:
            try:
                with _workspace(catalog) as ws:
                    public_key = ws.public_key_path
            except CatalogError:
                raise click.UsageError(
                    f"which key signed {file.name}? Give --public-key FILE.pem (the public key "
                    "the installation published), or run this inside its catalog (--catalog)"
                ) from None
        if retention.cli_proofs.is_proof(file):
            what, faults = retention.cli_proofs.verify_proof_file(file, public_key)
            last_signed = None
        else:
            report = api.verify_file(file, public_key, older)
            what = (
                f"export {file}: {report.certificates} certificates, {report.checkpoints} "
                f"checkpoints, signed by key {report.key_id}"
                + (f" (pinned key {report.pinned_key_id})" if report.pinned_key_id
                   else " (an export made before key pinning)")
            )  # fmt: skip
            faults = report.faults
            last_signed = None
    else:
        with _workspace(catalog) as ws:
            ledger = api.verify_ledger(ws, public_key)
        what = f"ledger: {ledger.certificates} certificates, {ledger.checkpoints} checkpoints" + (
            f", {ledger.unsigned} after the last checkpoint" if ledger.unsigned else ""
        )
        if ledger.pinned_key_id:
            rotations = len(ledger.keys) - 1
            what += f", pinned key {ledger.pinned_key_id}" + (
                f" rotated {rotations}x to {ledger.keys[-1]}" if rotations else ""
            )
        else:
            what += f", key {ledger.key_id} (not pinned: verify with the private key to pin it)"
        journal = ledger.decisions
        if journal is not None:
            what += f"; decision journal: {journal.entries} entries" + (
                f" ({journal.unauthenticated} unauthenticated)" if journal.unauthenticated else ""
            )
        if ledger.last_signed is not None:
            out.print(f"last checkpoint: seq {ledger.last_signed[0]}, hash {ledger.last_signed[1]}")
        for run_id, count in sorted(ledger.interrupted.items()):
            out.print(f"note: run {run_id} never finished (crashed or still running); "
                      f"{count} certificate(s) of it")  # fmt: skip
        faults = ledger.faults
        last_signed = ledger.last_signed
        if ledger.tree is not None:
            out.print(f"tree head: {ledger.tree[0]} leaves, root {ledger.tree[1]}")
    for fault in faults:
        out.print(f"FAIL {fault}", markup=False)
    out.print(f"{'FAILED' if faults else 'verified'} {what}", markup=False)
    output.emit("verify", {
        "ok": not faults, "verified": what, "faults": list(faults),
        "last_checkpoint": None if last_signed is None
        else {"seq": last_signed[0], "hash": last_signed[1]},
        "exit_code": EXIT_UNEXPECTED if faults else 0,
    })  # fmt: skip
    if faults:
        sys.exit(EXIT_UNEXPECTED)


@cli.command()
@catalog_option
@click.option("--subject", required=True, help="The data subject's identifier.")
@click.option("--register", help="Only this register.")
@as_of_option
@click.option("--dry-run", is_flag=True, help="Show what would be erased; change nothing.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --dry-run: write the plan report (.json, .csv, .html).",
)
@output_options
def erase(
    catalog: Path,
    subject: str,
    register: str | None,
    as_of: date | None,
    dry_run: bool,
    report: Path | None,
) -> None:
    """An erasure request: dispose of one person's records where the register allows it."""
    from retention import api

    out = _console()
    with _workspace(catalog) as ws:
        if not dry_run:
            _ = ws.secret, ws.signing_key()
        api.check(ws)
        day = api.as_of_or_today(ws, as_of)
        outcome = api.erase(ws, subject, register=register, as_of=day, dry_run=dry_run)
        if outcome.plan is not None and report is not None:
            from retention.reports.formats import write_report

            out.print(f"report: {write_report(ws, outcome.plan.plan_id, report)}", markup=False)
    for refusal in outcome.refusals:
        where = refusal.register + (f"/{refusal.policy}" if refusal.policy else "")
        out.print(f"refused  {where}: {refusal.reason}", markup=False)
    if outcome.plan is not None:
        _table(
            out, f"Erasure dry run {outcome.plan.plan_id} (nothing changed)", outcome.plan.policies
        )
    if outcome.run is not None:
        _print_run(out, outcome.run)
    out.print(f"subject reference {outcome.subject_ref[:16]}", markup=False)
    output.emit("erase", {
        "subject_ref": outcome.subject_ref[:16], "exit_code": outcome.exit_code,
        "refusals": [{"register": r.register, "policy": r.policy, "reason": r.reason}
                     for r in outcome.refusals],
        "plan": None if outcome.plan is None else {
            "plan_id": outcome.plan.plan_id, "policies": output.policies(outcome.plan.policies)},
        "run": None if outcome.run is None else output.run_summary(outcome.run),
    })  # fmt: skip
    sys.exit(outcome.exit_code)


@cli.command()
@catalog_option
@click.option(
    "--since",
    required=True,
    callback=_parse_date,
    metavar="YYYY-MM-DD",
    help="The day (UTC) the backup was taken: certificates executed since then are checked.",
)
@click.option(
    "--policy", "policies", multiple=True, help="REGISTER/POLICY, id or glob; repeatable."
)
@click.option(
    "--dry-run", is_flag=True, help="List what would be disposed of again; change nothing."
)
@output_options
def replay(catalog: Path, since: date, policies: Sequence[str], dry_run: bool) -> None:
    """After a restore from a backup: dispose again of records certified since --since that
    are back, with certificates that name the ones they replace."""
    from rich.table import Table

    from retention import api
    from retention.progress import progress_bars

    human = output.mode().human
    with _workspace(catalog) as ws, progress_bars(sys.stderr.isatty() and not dry_run and human):
        outcome = api.replay(ws, since, policies=policies, dry_run=dry_run)
    out = _console()
    title = f"Replay of certificates since {outcome.since}" + (
        " (dry run: nothing changed)" if dry_run else ""
    )
    table = Table(title=title)
    for name in ("policy", "status", "scanned", "restored", "disposed again", "held", "kept",
                 "still disposed"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("policy", "status") else "right")
    for p in outcome.policies:
        c = p.counts
        again = sum(r.decision == "expire" for r in p.records) if dry_run else p.disposed
        table.add_row(p.name, p.status, str(c.scanned), str(c.restored), str(again),
                      str(c.held), str(c.kept), str(c.still_disposed))  # fmt: skip
    out.print(table)
    for p in outcome.policies:
        if p.message:
            out.print(f"{p.name}: {p.message}", markup=False)
        if p.unchanged:
            out.print(f"{p.name}: {p.unchanged} restored records changed since they were read "
                      "and were left alone")  # fmt: skip
        for r in p.records:
            out.print(f"{p.name} {r.key} ref {r.record_ref[:16]}: {_replayed(r)}, replacing "
                      f"certificate {r.replaces}", markup=False)  # fmt: skip
    if outcome.run is not None:
        run = outcome.run
        out.print(f"run {run.run_id}: disposed of {run.disposed} records again; "
                  f"status {run.status} (exit {outcome.exit_code})", markup=False)  # fmt: skip
    output.emit("replay", {
        "since": outcome.since, "dry_run": dry_run, "exit_code": outcome.exit_code,
        "policies": [{"policy": p.name, "status": p.status, "message": p.message,
                      "counts": vars(p.counts), "unchanged": p.unchanged,
                      "records": [{"key": r.key, "record_ref": r.record_ref[:16],
                                   "decision": r.decision, "replaces": r.replaces}
                                  for r in p.records]}
                     for p in outcome.policies],
        "run": None if outcome.run is None else output.run_summary(outcome.run),
    })  # fmt: skip
    sys.exit(outcome.exit_code)


@cli.group()
def archive() -> None:
    """Archive packages (BagIt) written by archive policies."""


@archive.command("verify")
@catalog_option
@click.argument("packages", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
def archive_verify(catalog: Path, packages: Sequence[Path]) -> None:
    """Re-validate packages (fixity, completeness) and check them against the certificates
    that cite them; default: every package in the archive."""
    from retention import api

    with _workspace(catalog) as ws:
        results = api.verify_archive(ws, packages)
        root = ws.catalog.resolve(ws.catalog.settings.archive)
    out = _console()
    if not results:
        out.print(f"no archive packages in {root}")
        return
    for path, faults in results.items():
        out.print(
            f"{'ok  ' if not faults else 'FAIL'} {path}" + "".join(f"\n     {f}" for f in faults)
        )
    bad = sum(1 for faults in results.values() if faults)
    out.print(f"{len(results) - bad} of {len(results)} packages valid")
    if bad:
        sys.exit(EXIT_UNEXPECTED)


@cli.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-workspace"),
    show_default=True,
    help="Where the demo catalog, sources, state and reports are (re)built.",
)
@click.option(
    "--catalog",
    "source",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The catalog to copy (default: the five-register catalog shipped in the package).",
)
@as_of_option
def demo(workdir: Path, source: Path | None, as_of: date | None) -> None:
    """Build demo sources with synthetic people and run check → plan → run → export → verify
    in WORKDIR, from any directory: the shipped catalog travels inside the package."""
    from retention import logs
    from retention.demo import cycle as demo_flow

    logs.configure(level="warning")
    out = _console()
    with demo_flow.shipped_catalog() as shipped:
        result = demo_flow.run_demo(
            source or shipped, workdir, as_of, echo=lambda s: out.print(s, markup=False)
        )
    if not result.ok:
        sys.exit(EXIT_UNEXPECTED)


def _replayed(record: ReplayRecord) -> str:
    """What a replay dry run would do with one restored record."""
    if record.decision == "held":
        return "held" + (f" by {record.hold}" if record.hold else "")
    if record.decision == "retain":
        return "kept" + (f" ({record.reason})" if record.reason else "")
    return "would dispose of again"


def _tally(statuses: Iterable[str]) -> str:
    """ "10 completed, 1 failed" for a run's policies."""
    counts = Counter(statuses)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _table(out: Console, title: str, rows: Sequence[PolicyPlan]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for name in (
        "register",
        "policy",
        "action",
        "status",
        "scanned",
        "expire",
        "retain",
        "held",
        "done",
    ):
        table.add_column(
            name,
            justify="right" if name in ("scanned", "expire", "retain", "held", "done") else "left",
        )
    for p in rows:
        c = p.counts
        table.add_row(
            p.register,
            p.policy,
            p.action,
            p.status,
            str(c.scanned),
            str(c.expire),
            str(c.retain),
            str(c.held),
            str(c.done),
        )
    out.print(table)
    for p in rows:
        if p.message and p.status != "skipped":
            out.print(f"{p.name}: {p.message}", markup=False)


def _plan_code(policies: Sequence[PolicyPlan]) -> int:
    from retention.decide.problems import TROUBLED

    return 4 if any(p.status in TROUBLED for p in policies) else 0


def _print_run(out: Console, outcome: RunOutcome) -> None:
    _table(out, f"Run {outcome.run_id} as of {outcome.as_of}", outcome.policies)
    if outcome.reconciled:
        out.print(f"certified {outcome.reconciled} records left by an interrupted run")
    changed = sum(p.changed for p in outcome.policies)
    unplanned = sum(p.unplanned for p in outcome.policies)
    if changed:
        out.print(f"skipped {changed} planned records that changed since the plan was made "
                  "(see the PlannedRecordChanged log lines)")  # fmt: skip
    if unplanned:
        out.print(f"{unplanned} due records not in the plan were left for the next plan")
    held = sum(p.held_in_plan for p in outcome.policies)
    if held:
        out.print(f"{held} due records the plan lists as held (excluded from it, or held when "
                  "it was made) were kept though their hold was released: the next plan "
                  "decides them")  # fmt: skip
    out.print(
        f"disposed of {outcome.disposed} records; status {outcome.status} "
        f"(exit {outcome.exit_code})",
        markup=False,
    )


from retention import cli_notify  # noqa: E402 - attaches `retention notify` to the group

del cli_notify
# Review commands (reject, exclude) live in their own module.
from retention import cli_review  # noqa: E402

cli_review.attach(cli)
from retention.cli_records_plan import plan_import, show_drift  # noqa: E402 - records plan

cli.add_command(plan_import)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one place turns errors into messages and exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--json" in args:  # before parsing: a usage error is then one JSON line as well
        output.set_json()
    try:
        cli.main(args=args, prog_name="retention", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(130)  # interrupted, as a shell reports SIGINT
    except click.ClickException as exc:
        if output.mode().json:
            output.error(exc.format_message(), EXIT_INVALID, type(exc).__name__)
        else:
            exc.show()
        sys.exit(EXIT_INVALID)
    except CatalogError as exc:
        output.error(str(exc), exc.exit_code, type(exc).__name__)
        sys.exit(exc.exit_code)
    except RetentionError as exc:
        output.error(f"error: {exc}", exc.exit_code, type(exc).__name__)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last line of defence names the kind of failure
        from retention.state.database import state_failure

        named = state_failure(exc)  # a full or read-only state database: cause and remedy
        if named is not None:
            click.echo(f"error: {named}", err=True)
            sys.exit(named.exit_code)
        # Only the kind of failure: a driver's message can quote a row's values.
        output.error(f"unexpected failure: {type(exc).__name__} (set RETENTION_DEBUG=1 for "
                     "the details)", EXIT_UNEXPECTED, type(exc).__name__)  # fmt: skip
        if os.environ.get("RETENTION_DEBUG") == "1":
            raise
        sys.exit(EXIT_UNEXPECTED)
    sys.exit(0)


# Commands kept in modules of their own, attached to the group above.
from retention import cli_serve  # noqa: E402, F401
