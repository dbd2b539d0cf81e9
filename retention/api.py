"""The Python API behind every command: what the CLI does, callable and testable directly.

The CLI only parses arguments, prints and maps exceptions to exit codes; each function here
does the work and returns data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.engine import Engine

from retention.catalog import clock
from retention.catalog.clock import Duration
from retention.catalog.loading import (
    SETTINGS_FILE,
    BoundPolicy,
    Catalog,
    load_catalog,
    read_catalog,
)
from retention.decide import approval
from retention.decide.approval import PlanState, PlanStatus
from retention.decide.exclusion import Exclusion
from retention.decide.forecast import Forecast, count_due
from retention.decide.holds import Hold
from retention.decide.identity import HOLDERS, Identity, NotPermitted
from retention.decide.plan import Plan, make_plan
from retention.decide.problems import TROUBLED
from retention.enforce.check import check as check_sources
from retention.enforce.erase import ErasureOutcome, erase
from retention.enforce.execute import RunOutcome, enforce
from retention.enforce.replay import ReplayOutcome, replayable
from retention.enforce.rotation import Rotation
from retention.errors import EXIT_PARTIAL, EXIT_SUCCESS, UsageError
from retention.evidence import keyring, signing
from retention.evidence.decisions import Entry, JournalReport
from retention.evidence.export import ExportReport, check_format, export_certificates, verify_export
from retention.evidence.ledger import LedgerReport
from retention.logs import get_logger
from retention.pseudonym import SECRET_VARIABLE, Secret, key_text
from retention.reports.formats import writable_report, write_report
from retention.reports.report_html import report_language
from retention.state.database import masked, open_state
from retention.state.installation import check_secret
from retention.workspace import Workspace

if TYPE_CHECKING:
    from retention.catalog.plan_drift import PlanDrift
    from retention.connectors.base import Connector, Key, Selection

__all__ = [
    "ErasureOutcome",
    "Exclusion",
    "Forecast",
    "HoldCoversNothing",
    "HoldPreview",
    "Identity",
    "InitResult",
    "PlacedHold",
    "ReviewOutcome",
    "approval_status",
    "approve",
    "as_of_or_today",
    "check",
    "check_catalog",
    "chosen_policies",
    "decision_journal",
    "erase",
    "exclude",
    "explain",
    "export",
    "forecast",
    "hold_preview",
    "hold_report",
    "holds",
    "init",
    "place_hold",
    "plan",
    "plans",
    "records_plan_drift",
    "reject",
    "release_hold",
    "replay",
    "review",
    "rotate_key",
    "rotate_secret",
    "run",
    "run_plan",
    "status",
    "verify_archive",
    "verify_file",
    "verify_ledger",
]  # fmt: skip

DEFAULT_SETTINGS = """\
# Settings of this retention catalog (docs/catalog.md, "Settings"). ${VAR:-default} takes VAR
# from the environment. Secrets never live here: RETENTION_SECRET comes from the environment.
state: ${RETENTION_STATE:-sqlite:///retention-state.db}  # plans, holds, runs, certificates
archive: ${RETENTION_ARCHIVE:-archive}                    # archive packages
reports: ${RETENTION_REPORTS:-reports}                    # scheduled dry-run and review reports
signing_key: ${RETENTION_SIGNING_KEY:-keys/signing.pem}   # Ed25519 key: checkpoints, exports
timezone: Europe/Helsinki                                 # whose calendar days retention counts
batch_size: 1000                                          # first batch; later: sized by time
# A destroying policy refuses to run when more than this share of its records is due at once
# (a wrong date or rule shows as a flood): 0.8 is 80 %.
max_due_share: 0.8
report_language: en                                       # en | fi: HTML reports, certificates
"""


@dataclass(frozen=True)
class InitResult:
    settings_created: bool
    key_created: bool
    public_key_path: Path
    public_key_pem: str
    state: str
    secret: str
    """What became of RETENTION_SECRET's fingerprint: recorded, kept (the same secret), or
    not set (the first command that uses the secret records it)."""
    key_id: str | None = None
    """The pinned signing key's id (verify accepts checkpoints only from its chain)."""
    example: list[Path] = field(default_factory=list)
    """The example register written into an empty catalog."""
    gitignore: Path | None = None
    secret_file: Path | None = None
    """Where a generated RETENTION_SECRET was written (never printed)."""


def init(
    root: Path, environ: Mapping[str, str] | None = None, *, generate_secret: bool = False
) -> InitResult:
    """Create what is missing: settings file, state database, signing key pair; into an
    empty catalog a working example register and a ``.gitignore``. With ``generate_secret``
    and no RETENTION_SECRET set, a new secret in ``keys/retention-secret`` (recorded as the
    installation's)."""
    from retention.catalog import scaffold

    environ = os.environ if environ is None else environ
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(exist_ok=True)
    settings = root / SETTINGS_FILE
    created = not settings.exists()
    if created:
        settings.write_text(DEFAULT_SETTINGS, encoding="utf-8")
    example: list[Path] = []
    if scaffold.is_empty(root):
        zone = load_catalog(root, environ).settings.timezone
        example = scaffold.write_example(root, clock.today(zone))
    gitignore = scaffold.write_gitignore(root)
    secret_file = None
    if generate_secret and not environ.get(SECRET_VARIABLE):
        secret_file = scaffold.generate_secret(root)
        value = secret_file.read_text(encoding="ascii").strip()
        environ = {**environ, SECRET_VARIABLE: value}
    catalog = load_catalog(root, environ)
    engine = open_state(catalog.state_url, create=True)
    try:
        secret = _record_secret(engine, environ)
        key_path = catalog.resolve(catalog.settings.signing_key)
        pub_path, key_created = signing.create_key(key_path)
        chain = keyring.pin(engine, signing.load_private(key_path))
    finally:
        engine.dispose()
    return InitResult(
        settings_created=created,
        key_created=key_created,
        public_key_path=pub_path,
        public_key_pem=pub_path.read_text(encoding="ascii"),
        state=masked(catalog.state_url),
        secret=secret,
        key_id=chain.current,
        example=example,
        gitignore=gitignore,
        secret_file=secret_file,
    )


class HoldCoversNothing(UsageError):
    """A hold whose scope meets no record today: most often a typo in a subject or key."""


@dataclass(frozen=True)
class PlacedHold:
    hold: Hold
    covered: dict[str, int | None]
    """Records of each policy in the hold's scope today; None where the source could not
    be counted (it is unreachable): the hold is placed, but its reach is unknown there."""
    holds: tuple[Hold, ...] = ()
    """Every row the hold is stored as, ``hold`` first: one per spelling of the subject or
    key the source stores (see :mod:`retention.holds`)."""
    uncounted: dict[str, str] = field(default_factory=dict)
    """Why each policy counted as None could not be counted (its source's own words)."""

    @property
    def total(self) -> int:
        return sum(n for n in self.covered.values() if n is not None)


def _record_secret(engine: Engine, environ: Mapping[str, str]) -> str:
    """Record the fingerprint of RETENTION_SECRET if set (refusing one that differs from the
    recorded fingerprint); say what became of it."""
    value = environ.get(SECRET_VARIABLE, "")
    if not value:
        return "not set"
    Secret(value.encode())  # MissingSecret: too short to be used at all
    return "recorded" if check_secret(engine, value.encode()) else "kept"


@dataclass(frozen=True)
class HoldPreview:
    """What a hold would cover today, before it is saved: the web shows it, and a hold
    that covers nothing says so (``covers_nothing``) before anyone places it."""

    covered: dict[str, int | None]
    """Records of each policy in the hold's scope today; None where the source could not
    be counted (unreachable)."""
    uncounted: dict[str, str] = field(default_factory=dict)
    """Why each policy counted as None could not be counted."""

    @property
    def total(self) -> int:
        return sum(n for n in self.covered.values() if n is not None)

    @property
    def covers_nothing(self) -> bool:
        """Every source counted, and no record is in the hold's scope."""
        return not any(self.covered.values()) and None not in self.covered.values()


@dataclass(frozen=True)
class _Scope:
    register: str | None
    policy_id: str | None
    record: list[str]
    reach: dict[str, _Reach]
    uses_secret: bool


def _hold_scope(
    ws: Workspace,
    register: str | None,
    policy: str | None,
    subject: str | None,
    record: Sequence[str],
    until: date | None,
) -> _Scope:
    """Prove a hold's scope names something real in the catalog and count what it covers."""
    if register and register not in ws.catalog.registers:
        raise UsageError(f"no register {register!r}; the catalog has: "
                         f"{', '.join(ws.catalog.registers)}")  # fmt: skip
    today = as_of_or_today(ws, None)
    if until is not None and until < today:
        raise UsageError(
            f"--until {until} is before today ({today}, {ws.catalog.settings.timezone}): a hold "
            "is in force through its --until day, so this one would protect nothing; give its "
            "last day from today on, or no --until for a hold in force until released"
        )
    policy_id = None
    if policy:
        found = ws.catalog.select([policy])
        if len(found) != 1:
            raise UsageError(f"--policy {policy!r} names {len(found)} policies; name one")
        if register and found[0].register.id != register:
            raise UsageError(f"policy {policy!r} is not in register {register!r}")
        register, policy_id = found[0].register.id, found[0].policy.id
        columns = found[0].policy.key
        if record and len(record) != len(columns):
            raise UsageError(
                f"the key of {found[0].name} has {len(columns)} column(s) "
                f"({', '.join(columns)}): give --record once per column, in that order"
            )
        if record:  # as the source types it: "017" names record 17 in a number column
            connector = ws.connector(found[0].policy.connector)
            try:
                typed = connector.parse_key(found[0].policy.location, columns, record)
            except ValueError:
                raise UsageError(
                    f"--record {' '.join(record)} is not a key of {found[0].name} "
                    f"({', '.join(columns)})"
                ) from None
            record = [key_text(value) for value in typed]
    in_scope = [
        bound for bound in ws.catalog.policies
        if (register is None or bound.register.id == register)
        and (policy_id is None or bound.policy.id == policy_id)
    ]  # fmt: skip
    # A set secret is checked even for a hold that needs none: another secret is a mistake.
    uses_secret = bool(subject or ws.environ.get(SECRET_VARIABLE))
    if uses_secret:
        _ = ws.secret  # refused before counting: a subject hold stores a keyed reference
    reach = {b.name: _covered(ws, b, subject, record) for b in in_scope}
    return _Scope(register, policy_id, list(record), reach, uses_secret)


def hold_preview(
    ws: Workspace,
    *,
    register: str | None = None,
    policy: str | None = None,
    subject: str | None = None,
    record: Sequence[str] = (),
    until: date | None = None,
) -> HoldPreview:
    """What a hold with this scope would cover today, counted as ``place_hold`` counts it;
    nothing is stored. Bad scope is refused as ``place_hold`` refuses it."""
    if not (register or policy or subject or record):
        raise UsageError(
            "a hold needs at least one scope: --register, --policy, --subject or --record"
        )
    if record and not policy:
        raise UsageError("--record needs --policy: a key is only unique within its table")
    scope = _hold_scope(ws, register, policy, subject, record, until)
    return HoldPreview(
        {name: r.count for name, r in scope.reach.items()},
        {name: r.why for name, r in scope.reach.items() if r.why is not None},
    )


def place_hold(
    ws: Workspace,
    *,
    reason: str,
    placed_by: str | None = None,
    identity: Identity | None = None,
    register: str | None = None,
    policy: str | None = None,
    subject: str | None = None,
    record: Sequence[str] = (),
    until: date | None = None,
    force: bool = False,
) -> PlacedHold:
    """Place a hold after proving its scope names something real in the catalog, and count
    the records it covers today. A hold that demonstrably covers nothing (every source
    counted, none has such a record) is refused unless ``force``: a mistyped subject or key
    would otherwise protect nothing while its placer believes the record safe.

    ``identity`` is who places it (the web's signed-in person); without it, ``placed_by`` is a
    name typed at the command line, recorded as unauthenticated with the OS account. The
    placement is appended to the signed decision journal with the hold."""
    from retention.evidence import decisions

    who = identity if identity is not None else Identity.cli(placed_by)
    _refuse_holder(who, "place")
    key = ws.signing_key()
    decisions.sign_key_ready(ws.state, key)
    scope = _hold_scope(ws, register, policy, subject, record, until)
    reach = scope.reach
    covered = {name: r.count for name, r in reach.items()}
    if not force and not any(covered.values()) and None not in covered.values():
        raise HoldCoversNothing(
            "the hold covers no record today: no record of "
            f"{', '.join(covered) or 'any policy'} has that "
            f"{'subject' if subject else 'key' if record else 'scope'} (check it for a typo). "
            "Place it anyway with --force (a hold for records yet to come)"
        )
    # What a run compares is what the source stores: the hold covers each spelling of the
    # subject and the key that the source counted as the one given. Where a source could
    # not be counted, the text as given is covered as well.
    uncounted = {name: r.why for name, r in reach.items() if r.why is not None}
    spellings = [v for r in reach.values() for v in r.spellings]
    stored = [k for r in reach.values() for k in r.keys]
    if uncounted and spellings:
        spellings.insert(0, subject)
    with ws.state.begin() as conn:
        made = ws.holds.place_all(
            reason=reason, placed_by=who.name, secret=ws.secret if scope.uses_secret else None,
            register=scope.register, policy=scope.policy_id, subject=subject,
            record=scope.record or None, until=until, spellings=spellings, stored_keys=stored,
            placed_identity=who.as_dict(), conn=conn,
        )  # fmt: skip
        decisions.append(conn, key, "hold-placed", who.as_dict(), hold_id=made[0].hold_id,
                         details=_hold_details(made))  # fmt: skip
    return PlacedHold(made[0], covered, tuple(made), uncounted)


def _hold_details(made: Sequence[Hold]) -> dict[str, Any]:
    """A hold as its journal entry records it: scope by reference and key, never a subject."""
    first = made[0]
    return {
        "rows": [h.hold_id for h in made], "register": first.register, "policy": first.policy,
        "subject_refs": [h.subject_ref for h in made if h.subject_ref],
        "record_keys": [h.record_key for h in made if h.record_key], "reason": first.reason,
        "until": first.until.isoformat() if first.until else None,
    }  # fmt: skip


def _refuse_holder(identity: Identity, verb: str) -> None:
    if identity.authenticated and identity.role not in HOLDERS:
        raise NotPermitted(
            f"{identity.name} signed in as {identity.role or 'no role'} and may not {verb} "
            "holds: that takes a records manager, an archivist or the data protection officer"
        )


def release_hold(
    ws: Workspace, hold_id: str, *, identity: Identity | None = None, by: str | None = None
) -> Hold:
    """Release a hold (every row of it; a suffixed id: that spelling), recorded with who
    released it and appended to the decision journal. Without ``identity``, ``by`` is a
    name typed at the command line (unauthenticated)."""
    from retention.evidence import decisions

    who = identity if identity is not None else Identity.cli(by)
    _refuse_holder(who, "release")
    key = ws.signing_key()
    decisions.sign_key_ready(ws.state, key)
    return ws.holds.release(
        hold_id, who.name, who.as_dict(),
        then=lambda conn: decisions.append(conn, key, "hold-released", who.as_dict(),
                                           hold_id=hold_id),
    )  # fmt: skip


def holds(ws: Workspace, *, include_released: bool = False) -> list[Hold]:
    """The holds in force today (with ``include_released``: every hold ever placed)."""
    if include_released:
        return ws.holds.all()
    return ws.holds.active(as_of_or_today(ws, None))


@dataclass(frozen=True)
class _Reach:
    """What a hold would cover in one policy today, as its source compares."""

    count: int | None
    spellings: tuple[Any, ...] = ()
    """The subject's values as the source stores them, on the records counted."""
    keys: tuple[Key, ...] = ()
    """The record's key as the source stores it (a caseless key: in its stored case)."""
    why: str | None = None
    """Why the source could not be counted (unreachable)."""


def _covered(
    ws: Workspace, bound: BoundPolicy, subject: str | None, record: Sequence[str]
) -> _Reach:
    """The records of one policy a hold with this subject and/or key covers today.

    Only an unreachable source leaves them uncounted; a key the source refuses (a path that
    leaves the share) is no key of the policy, and is refused: a run never compares it."""
    from retention.connectors.base import Selection
    from retention.decide.plan import NO_SUCH_SUBJECT, typed_subject
    from retention.errors import SourceUnavailable

    policy = bound.policy
    if subject is not None and policy.subject is None:
        return _Reach(0)  # no subject column: no record of this policy belongs to a person by it
    try:
        connector = ws.connector(policy.connector)
        selection = Selection(table=policy.location, key=policy.key, match=policy.match)
        keys: tuple[Key, ...] = ()
        spellings: dict[str, Any] = {}
        if record:
            keys = _stored_keys(connector, bound, selection, record)
            if subject is None:
                return _Reach(len(keys), keys=keys)
        if subject is None:
            return _Reach(connector.count(selection, candidates_only=False))
        value = typed_subject(connector, bound, subject)
        if value is NO_SUCH_SUBJECT:
            return _Reach(0, keys=keys)
        assert policy.subject is not None
        # The subject's records, read with the subject as each stores it: the source picks
        # them under its own comparison, and each spelling found is one the run will hash.
        mine = replace(selection, subject=(policy.subject, value), columns=(policy.subject,))
        count = 0
        for page in connector.candidates(mine, ws.catalog.settings.batch_size):
            for found in page:
                if record and found.key not in keys:
                    continue
                count += 1
                spelled = found.values.get(policy.subject)
                if spelled is not None:
                    spellings.setdefault(key_text(spelled), spelled)
        return _Reach(count, tuple(spellings.values()), keys)
    except SourceUnavailable as exc:
        return _Reach(None, why=str(exc))


def _stored_keys(
    connector: Connector, bound: BoundPolicy, selection: Selection, record: Sequence[str]
) -> tuple[Key, ...]:
    """The key of the record ``record`` names, as the source stores it (none if no such
    record); a key the source refuses to look up is refused as no key of the policy."""
    from retention.errors import RetentionError, SourceUnavailable

    key = connector.parse_key(bound.policy.location, bound.policy.key, record)
    try:
        return tuple(connector.reread(selection, [key], []))
    except SourceUnavailable:
        raise
    except RetentionError as exc:  # the key is not repeated: a file name can be personal data
        raise UsageError(f"--record is not a key of {bound.name}: {exc}") from None


@dataclass(frozen=True)
class HoldCoverage:
    """What one hold is keeping from disposal today: due records, by policy."""

    hold: Hold
    records: dict[str, list[str | list[str]]]


def hold_report(ws: Workspace, as_of: date | None = None) -> tuple[str, list[HoldCoverage]]:
    """Plan every policy (a stored dry run) and group the held records by the hold that
    keeps them; returns the plan id and one entry per hold in force."""
    import json

    import sqlalchemy as sa

    from retention.state.database import plan_records

    day = as_of_or_today(ws, as_of)
    result = make_plan(ws, ws.catalog.select(["*"]), day, "hold-report", for_approval=False)
    coverage = {h.hold_id: HoldCoverage(h, {}) for h in ws.holds.active(day)}
    c = plan_records.c
    query = (
        sa.select(c.register, c.policy, c.key, c.hold_id)
        .where(c.plan_id == result.plan_id, c.decision == "held")
        .order_by(c.id)
    )
    with ws.state.connect() as conn:
        for row in conn.execute(query):
            if row.hold_id in coverage:
                key = json.loads(row.key)
                name = f"{row.register}/{row.policy}"
                held = coverage[row.hold_id].records
                held.setdefault(name, []).append(key[0] if len(key) == 1 else key)
    return result.plan_id, list(coverage.values())


@dataclass(frozen=True)
class Status:
    """What an operator asks first: what ran, what it did, what is unfinished."""

    runs: list[dict[str, object]]
    pending_intents: dict[str, int]
    locks: list[dict[str, object]]
    certificates: int
    last_checkpoint: dict[str, object] | None


def status(ws: Workspace, limit: int = 10) -> Status:
    """The last runs, intents an interrupted run left, locks held, and the ledger's end."""
    import json

    import sqlalchemy as sa

    from retention.state.database import (
        as_utc,
        intent_batches,
        intents,
        ledger_head,
        locks,
        plans,
        runs,
    )

    with ws.state.connect() as conn:
        approved = plans.alias("approved")  # the approved plan a run executed, if any
        recent = (
            conn.execute(
                sa.select(runs, approved.c.plan_id.label("executed_plan"), approved.c.approved_by)
                .outerjoin(approved, approved.c.executed_run == runs.c.run_id)
                .order_by(runs.c.started_at.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
        pending = list(
            conn.execute(
                sa.select(intents.c.register, intents.c.policy, sa.func.count()).group_by(
                    intents.c.register, intents.c.policy
                )
            ).all()
        )
        b = intent_batches.c
        pending += conn.execute(
            sa.select(b.register, b.policy, sa.func.sum(b.records)).group_by(b.register, b.policy)
        ).all()
        held = conn.execute(sa.select(locks).order_by(locks.c.name)).mappings().all()
        total = conn.scalar(sa.select(ledger_head.c.last_seq)) or 0
    checkpoints = ws.ledger.checkpoint_rows()
    return Status(
        runs=[
            {"run_id": r["run_id"], "job": r["job"], "status": r["status"],
             "exit_code": r["exit_code"], "started_at": as_utc(r["started_at"]),
             "finished_at": as_utc(r["finished_at"]) if r["finished_at"] else None,
             "executed_plan": r["executed_plan"], "approved_by": r["approved_by"],
             "policies": json.loads(r["summary"]) if r["summary"] else {}}
            for r in recent
        ],
        pending_intents=_summed((f"{r[0]}/{r[1]}", int(r[2])) for r in pending),
        locks=[{"name": h["name"], "owner": h["owner"],
                "heartbeat_at": as_utc(h["heartbeat_at"]),
                "lease_until": as_utc(h["lease_until"]) if h["lease_until"] else None}
               for h in held],
        certificates=int(total),
        last_checkpoint=checkpoints[-1] if checkpoints else None,
    )  # fmt: skip


def _summed(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for name, count in pairs:
        totals[name] = totals.get(name, 0) + count
    return totals


def verify_archive(ws: Workspace, packages: Sequence[Path] = ()) -> dict[Path, list[str]]:
    """Re-validate packages (BagIt fixity) and hold each against the certificates citing it:
    same tag-manifest checksum, and a record file for every certified record."""
    from retention.enforce.archive import TAG_MANIFEST, packages_in, verify_packages

    root = ws.catalog.resolve(ws.catalog.settings.archive)
    chosen = list(packages) or packages_in(root)
    faults: dict[Path, list[str]] = {
        path: [fault] if fault else [] for path, fault in verify_packages(chosen).items()
    }
    by_name = {path.name: path for path in chosen}
    for cert in ws.ledger.iter_certificates():
        archive = cert.get("archive")
        if not archive or archive.get("package") not in by_name:
            continue
        path = by_name[archive["package"]]
        manifest = path / TAG_MANIFEST
        if manifest.is_file() and _sha256_file(manifest) != archive.get("sha256"):
            message = "its tag manifest is not the one the certificates recorded"
            if message not in faults[path]:
                faults[path].append(message)
        if not (path / "data" / "records" / f"{cert['record_ref']}.json").is_file():
            faults[path].append(f"certified record {cert['record_ref'][:16]}… is missing")
    return faults


def _sha256_file(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Explanation:
    """Why one record is kept, due, held or done: what a records manager tells a person."""

    policy: str
    key: list[str]
    rule: str
    legal_basis: str | None
    found: bool
    decision: str | None
    trigger_date: date | None
    expires_on: date | None
    hold: Hold | None
    reason: str | None
    certificate: dict[str, object] | None
    secret: bool
    record_ref: str = ""
    """The record's reference: how problems, logs and certificates name it."""


def explain(
    ws: Workspace, policy: str, key: Sequence[str], as_of: date | None = None
) -> Explanation:
    """Decide one record by key as a run would, and say why."""
    from retention.connectors.base import Record, Selection, combine_triggers
    from retention.decide.plan import Decider, conditions, selection_for

    found = ws.catalog.select([policy])
    if len(found) != 1:
        raise UsageError(f"{policy!r} names {len(found)} policies; name one")
    bound = found[0]
    rule = bound.policy
    day = as_of_or_today(ws, as_of)
    connector = ws.connector(rule.connector)
    if len(key) != len(rule.key):
        raise UsageError(f"the key of {bound.name} has {len(rule.key)} column(s) "
                         f"({', '.join(rule.key)}): give one value per column")  # fmt: skip
    try:
        typed = connector.parse_key(rule.location, rule.key, key)
    except ValueError:
        raise UsageError(f"{' '.join(key)} is not a key of {bound.name}") from None
    ref = ws.secret.record_ref(rule.connector, rule.location, typed)
    certificate = ws.ledger.certificate_for(bound.register.id, rule.id, ref)
    wanted = selection_for(bound, day) or Selection(table=rule.location, key=rule.key)
    columns = [*rule.trigger, *wanted.columns, *connector.capabilities.versions]
    rows = connector.reread(Selection(table=rule.location, key=rule.key, match=rule.match),
                            [typed], columns)  # fmt: skip
    row = next(iter(rows.values()), None)
    missing = Explanation(
        policy=bound.name, key=list(key), rule=rule.describe_rule(),
        legal_basis=rule.legal_basis, found=False, decision="done" if certificate else None,
        trigger_date=None, expires_on=None, hold=None, reason=None, certificate=certificate,
        secret=False, record_ref=ref,
    )  # fmt: skip
    if row is None:
        return missing
    trigger = combine_triggers([_day(row.get(c)) for c in rule.trigger], rule.trigger_rule)
    active = ws.holds.active(day)
    decider = Decider(bound, connector, ws.secret, ws.ledger, active, day,
                      ws.catalog.settings.batch_size)  # fmt: skip
    exceptions = Selection(table=rule.location, key=rule.key, unless=conditions(rule))
    verdicts = connector.unless_met(exceptions, [typed]) if rule.unless else {}
    kept = next(iter(verdicts.values()), None)
    decided = decider.decide_one(Record(key=typed, trigger=trigger, values=row, kept=kept))
    holds = {h.hold_id: h for h in active}
    return replace(
        missing, found=True, decision=decided.decision, secret=decided.secret,
        trigger_date=decided.shown_trigger, expires_on=decided.shown_expires_on,
        hold=holds.get(decided.shown_hold) if decided.shown_hold else None,
        reason=None if decided.secret else decided.reason,
    )  # fmt: skip


def _day(value: object) -> date | None:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def forecast(ws: Workspace, months: int = 12, as_of: date | None = None) -> Forecast:
    """Counted in the source with the same cutoffs a run uses, month by month."""
    if not 1 <= months <= 120:
        raise UsageError("--months must be between 1 and 120")
    day = as_of_or_today(ws, as_of)
    return count_due(ws, ws.catalog.select(["*"]), months, day)


def check(ws: Workspace) -> list[str]:
    """Validate the catalog against the live sources; CatalogError lists every problem,
    and every record a source would refuse."""
    return check_sources(ws, records=True)


def check_catalog(
    root: Path, environ: Mapping[str, str] | None = None
) -> tuple[Workspace, list[str]]:
    """``retention check``: static and live problems of a catalog, all in one CatalogError
    (a policy contradicting its records-management plan without a stated deviation too)."""
    catalog, static = read_catalog(root, environ)
    drift = records_plan_drift(catalog) if not static else None
    static = [*static, *(drift.errors if drift is not None else [])]
    with Workspace(catalog, environ) as ws:
        return ws, check_sources(ws, static, records=True)


def records_plan_drift(catalog: Catalog, as_of: date | None = None) -> PlanDrift | None:
    """The "records plan" section: how the catalog differs from the plans it cites, on
    ``as_of`` (default: today in the catalog's zone); None when it follows no plan."""
    from retention.catalog.plan_drift import plan_drift

    return plan_drift(catalog, as_of or catalog.today()[0])


def as_of_or_today(ws: Workspace, as_of: date | None, job: str | None = None) -> date:
    if as_of is not None:
        if not date(1000, 1, 1) <= as_of <= date(9000, 12, 31):
            raise UsageError(f"--as-of {as_of} is outside the years 1000-9000 the engine computes")
        return as_of
    if job:
        ws.catalog.job(job)  # UsageError naming the jobs there are
    return ws.catalog.today(job)[0]


def chosen_policies(ws: Workspace, job: str | None, names: Sequence[str]) -> list[BoundPolicy]:
    if names:
        return ws.catalog.select(names)
    if job:
        return ws.catalog.select(ws.catalog.job(job).policies)
    return ws.catalog.select(["*"])


def plan(
    ws: Workspace,
    *,
    job: str | None = None,
    policies: Sequence[str] = (),
    as_of: date | None = None,
    report: Path | None = None,
    lang: str | None = None,
    more_reports: Sequence[Path] = (),
    for_approval: bool = True,
    made_by: Identity | None = None,
) -> tuple[Plan, Path | None]:
    """Dry run: check, decide, store the plan, write the report; no source is changed.

    ``more_reports`` are further reports of the same plan (an HTML page and the CSV that lists
    every record); ``lang`` is the HTML page's language. Without ``for_approval`` the plan is
    a preview that cannot be approved (a scheduled dry run). ``made_by``: who makes it (the
    web's signed-in person; default: the OS account, unauthenticated), who cannot approve it.
    """
    _ = ws.secret
    paths = [*([report] if report is not None else []), *more_reports]
    for path in paths:
        writable_report(path)
    if len({p.resolve() for p in paths}) < len(paths):
        raise UsageError("--report names the same file twice")
    if lang is not None:
        if not any(p.suffix.lower() == ".html" for p in paths):
            raise UsageError("--lang is the language of an .html report: give --report FILE.html")
        report_language(ws, lang)
    check_sources(ws)
    day = as_of_or_today(ws, as_of, job)
    result = make_plan(ws, chosen_policies(ws, job, policies), day, job,
                       for_approval=for_approval, made_by=made_by)  # fmt: skip
    for path in paths:
        others = [p for p in paths if p != path and p.suffix.lower() != ".html"]
        write_report(ws, result.plan_id, path, lang=lang, companions=others)
    return result, paths[0] if paths else None


def run(
    ws: Workspace,
    *,
    job: str | None = None,
    policies: Sequence[str] = (),
    as_of: date | None = None,
) -> RunOutcome:
    """Enforce: check the catalog, then dispose of due records with certificates."""
    mode = ws.catalog.job(job).mode if job else "enforce"
    if mode == "review":
        raise UsageError(
            f"job {job!r} runs in review mode: only approved plans of it run, with "
            f"`retention run --job {job}` (no --policy) or `retention run --plan PLAN`"
        )
    if mode != "enforce":
        raise UsageError(f"job {job!r} runs in {mode} mode: use `retention plan --job` for it")
    _ = ws.secret, ws.signing_key()
    check_sources(ws)
    day = as_of_or_today(ws, as_of, job)
    return enforce(ws, chosen_policies(ws, job, policies), day, job)


def replay(
    ws: Workspace,
    since: date,
    *,
    policies: Sequence[str] = (),
    dry_run: bool = False,
) -> ReplayOutcome:
    """After a restore from a backup: dispose again of the records certified since ``since``
    (a UTC day, as certificates are dated) that are back; ``dry_run`` lists them instead."""
    from datetime import UTC, datetime

    from retention.enforce.replay import replay as replay_restored

    _ = ws.secret
    if not dry_run:
        _ = ws.signing_key()
    today = datetime.now(UTC).date()
    if since > today:
        raise UsageError(f"--since {since} is after today ({today}, UTC): no certificate "
                         "was executed since then, so nothing could be found")  # fmt: skip
    chosen = replayable(ws, policies)
    check_sources(ws)
    return replay_restored(ws, chosen, since, as_of_or_today(ws, None), dry_run=dry_run)


def export(
    ws: Workspace,
    out: Path,
    since: date | None = None,
    until: date | None = None,
    register: str | None = None,
    lang: str | None = None,
) -> dict[str, object]:
    """A signed export; ``lang`` is a certificate of destruction's language (default: the
    catalog's ``report_language``)."""
    check_format(out)
    language = report_language(ws, lang)
    if register is not None and register not in ws.catalog.registers:
        raise UsageError(
            f"no register {register!r}; the catalog has: {', '.join(ws.catalog.registers)}"
        )
    return export_certificates(ws, out, since, until, register, language)


def rotate_secret(ws: Workspace, new_from_env: str) -> Rotation:
    """``retention secret rotate``: the secret in the variable ``new_from_env`` replaces
    RETENTION_SECRET (which must be the current one); see :mod:`retention.enforce.rotation`."""
    from retention.enforce.rotation import rotate

    if new_from_env == SECRET_VARIABLE:
        raise UsageError(f"--new-from-env names {SECRET_VARIABLE} itself: put the new secret "
                         "in another variable and name that one")  # fmt: skip
    value = ws.environ.get(new_from_env, "")
    if not value:
        raise UsageError(f"--new-from-env {new_from_env}: that variable is not set or empty")
    return rotate(ws, value, as_of_or_today(ws, None))


def verify_ledger(ws: Workspace, public_key: Path | None = None) -> LedgerReport:
    """Verify the ledger with ``public_key`` (default: the catalog's key).

    Where the catalog's private key can be read, a ledger made before key pinning has it
    pinned now, and that key must be in the pinned chain too, whatever key was given: a key
    pair made by whoever re-signed the checkpoints is never enough."""
    own: list[Ed25519PublicKey] = []
    try:
        private = ws.signing_key() if ws.key_path.exists() else None
    except (UsageError, OSError):  # not readable by whoever verifies: the public key will do
        private = None
    if private is not None:
        keyring.pin(ws.state, private)
        own.append(private.public_key())
    if ws.public_key_path.exists():
        own.append(signing.load_public(ws.public_key_path))
    key = signing.load_public(public_key) if public_key is not None else None
    if key is None:
        if not own:
            raise UsageError(f"no public key at {ws.public_key_path}: give --public-key")
        key = own[0]
    given = signing.key_id(key)
    also = [k for k in own if signing.key_id(k) != given]
    report = ws.ledger.verify(key, also=also)
    report.decisions = verify_decisions(ws)  # who decided: checked with what was done
    report.faults.extend(report.decisions.faults)
    return report


def rotate_key(ws: Workspace) -> dict[str, object]:
    """Replace the signing key by a new pair, recorded as a rotation signed by both keys.

    The new pair is written beside the old one first, the rotation recorded next, and only
    then are the files swapped: the old pair stays as ``<name>.<old key id>.pem`` (and its
    ``.pub.pem``), so checkpoints it signed can still be checked with it offline."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    old = ws.signing_key()
    chain = keyring.require_current(ws.state, old)
    old_id = chain.current
    path = ws.key_path
    staged = path.with_name(path.name + ".new")
    staged.unlink(missing_ok=True)
    new = Ed25519PrivateKey.generate()
    signing.write_private(staged, new)
    statement = keyring.rotate(ws.state, old, new)
    name = path.name.removesuffix(".pem")
    retired = path.with_name(f"{name}.{old_id}.pem")
    path.replace(retired)
    if ws.public_key_path.exists():
        ws.public_key_path.replace(signing.public_path(retired))
    staged.replace(path)
    ws.public_key_path.write_text(signing.public_pem(new.public_key()), encoding="ascii")
    return {**statement, "retired": str(retired)}


def verify_file(path: Path, public_key: Path, since: Path | None = None) -> ExportReport:
    """Verify an export; with ``since``, also that its tree extends that earlier export's."""
    if not path.exists():
        raise UsageError(f"no such export file: {path}")
    if since is not None and not since.exists():
        raise UsageError(f"no such export file: {since}")
    return verify_export(path, signing.load_public(public_key), since=since)


@dataclass(frozen=True)
class Proven:
    """A proof of one record's (or one person's) certificates, and what it names them by."""

    proof: dict[str, Any]
    certificates: int
    what: str
    """The record or subject by its keyed reference only: safe to show and log."""


def prove(
    ws: Workspace,
    *,
    subject: str | None = None,
    policy: str | None = None,
    key: Sequence[str] = (),
) -> Proven:
    """The inclusion proof (:mod:`retention.evidence.proof`) of a data subject's certificates,
    or of one record's (``policy`` and one ``key`` value per key column). UsageError, naming
    the subject only by its reference, if nothing of it is in the ledger; LedgerError if no
    checkpoint signs a tree yet."""
    from retention.evidence.proof import make_proof

    if (subject is None) == (policy is None) or (policy is not None and not key):
        raise UsageError("give a subject, or a policy with its record's key (one per column)")
    if subject is not None:
        if not subject.strip():
            raise UsageError("the subject must name a data subject")
        reference = ws.secret.subject_ref(subject)
        seqs = ws.ledger.seqs_of_subject(reference)
        what = f"subject reference {reference[:16]}"
    else:
        assert policy is not None
        found = ws.catalog.select([policy])
        if len(found) != 1:
            raise UsageError(f"{policy!r} names {len(found)} policies; name one")
        bound = found[0]
        rule = bound.policy
        if len(key) != len(rule.key):
            raise UsageError(f"the key of {bound.name} has {len(rule.key)} column(s) "
                             f"({', '.join(rule.key)}): give one value per column")  # fmt: skip
        try:
            typed = ws.connector(rule.connector).parse_key(rule.location, rule.key, key)
        except ValueError:
            raise UsageError(f"{' '.join(key)} is not a key of {bound.name}") from None
        ref = ws.secret.record_ref(rule.connector, rule.location, typed)
        seqs = ws.ledger.seqs_of_record(bound.register.id, rule.id, ref)
        what = f"record {ref[:16]} of {bound.name}"
    if not seqs:
        raise UsageError(f"no certificate of {what} is in the ledger")
    return Proven(make_proof(ws.state, seqs), len(seqs), what)


def approve(
    ws: Workspace,
    plan_id: str,
    *,
    by: str | None = None,
    identity: Identity | None = None,
    comment: str | None = None,
    cooling_off: Duration | None = None,
) -> PlanStatus:
    """Approve a stored dry run as ``identity`` (the web's signed-in person) or, from the
    command line, as the name ``by`` (unauthenticated, with the OS account); see
    :mod:`retention.decide.approval` for the four-eyes rules. Returns the plan's status:
    ``status.review`` says whether its approvals are complete."""
    return approval.approve(ws, plan_id, _who(by, identity), comment, cooling_off)


def reject(
    ws: Workspace,
    plan_id: str,
    *,
    comment: str,
    by: str | None = None,
    identity: Identity | None = None,
) -> PlanStatus:
    """Reject a plan with a comment: it can then be neither approved nor executed."""
    return approval.reject(ws, plan_id, _who(by, identity), comment)


def exclude(
    ws: Workspace,
    plan_id: str,
    *,
    policy: str,
    keys: Sequence[Sequence[str]],
    reason: str,
    by: str | None = None,
    identity: Identity | None = None,
) -> Exclusion:
    """Exclude records of ``policy`` (each key one value per key column) from a pending
    plan: each becomes a record-scoped hold, and the excluder the plan's last changer."""
    from retention.decide.exclusion import exclude as exclude_records

    return exclude_records(ws, plan_id, _who(by, identity), policy, keys, reason)


def approval_status(ws: Workspace, plan_id: str) -> PlanStatus:
    """One plan's state and review: ``.review`` has required approvals, those given,
    ``missing``, ``complete`` and ``rejected`` (``.review.as_dict()`` for JSON)."""
    return approval.plan_status(ws, plan_id)


def decision_journal(ws: Workspace, plan_id: str | None = None) -> list[Entry]:
    """The decision journal (oldest first), or the entries about one plan."""
    from retention.evidence import decisions

    if plan_id is None:
        return decisions.entries(ws.state)
    with ws.state.connect() as conn:
        return decisions.for_plans(conn, [plan_id])[plan_id]


def verify_decisions(ws: Workspace) -> JournalReport:
    """Verify the decision journal: every entry's hash and signature (by the pinned key
    chain), the chain from entry to entry, and its head; faults name the entry."""
    from retention.evidence import decisions

    return decisions.verify(ws.state)


def _who(by: str | None, identity: Identity | None) -> str | Identity:
    if identity is not None and by is not None:
        raise UsageError("give either an identity or --by, not both")
    if identity is not None:
        return identity
    if by is None:
        raise UsageError("--by is missing: name the person who decides")
    return by


def plans(
    ws: Workspace, *, job: str | None = None, state: PlanState | None = None
) -> list[PlanStatus]:
    """Stored dry-run plans, newest first, with their approval state."""
    if job is not None:
        ws.catalog.job(job)  # an unknown job is an error that lists the jobs
    return approval.list_plans(ws, job, state)


def run_plan(ws: Workspace, plan_id: str, *, as_of: date | None = None) -> RunOutcome:
    """Execute exactly an approved plan: its records that are still due today, not held, not
    done and unchanged since the plan; each plan once."""
    _ = ws.secret, ws.signing_key()
    approved = approval.runnable(ws, plan_id)
    check_sources(ws)
    names = set(approved.policies)
    chosen = [b for b in ws.catalog.policies if b.name in names]
    job = approved.job if approved.job in ws.catalog.jobs else None
    day = as_of_or_today(ws, as_of, job)
    return enforce(ws, chosen, day, job, approved=approved)


@dataclass(frozen=True)
class ReviewOutcome:
    """One firing of a review job: the approved plans it executed, and its new plan."""

    runs: dict[str, RunOutcome]
    """Plan id → the run that executed it."""
    waiting: list[PlanStatus]
    """Approved plans of the job still cooling off."""
    plan: Plan
    report: Path | None

    @property
    def exit_code(self) -> int:
        codes = [r.exit_code for r in self.runs.values()]
        if any(p.status in TROUBLED for p in self.plan.policies):
            codes.append(EXIT_PARTIAL)
        return max(codes, default=EXIT_SUCCESS)


def review(
    ws: Workspace,
    job: str,
    *,
    as_of: date | None = None,
    report: Path | None = None,
    more_reports: Sequence[Path] = (),
) -> ReviewOutcome:
    """A ``mode: review`` job: execute its approved, runnable plans (oldest first), then make
    a new plan for approval. Nothing else is disposed of. ``more_reports`` are the same plan
    in further formats, as for :func:`plan`."""
    if ws.catalog.job(job).mode != "review":
        raise UsageError(f"job {job!r} is not in review mode")
    _ = ws.secret, ws.signing_key()
    for path in [*([report] if report is not None else []), *more_reports]:
        writable_report(path)
    log = get_logger("retention").bind(job=job)
    runs: dict[str, RunOutcome] = {}
    for status in reversed(approval.list_plans(ws, job, "approved")):
        outcome = run_plan(ws, status.plan_id, as_of=as_of)
        runs[status.plan_id] = outcome
        log.info("PlanExecuted", plan_id=status.plan_id, run_id=outcome.run_id,
                 status=outcome.status, disposed=outcome.disposed)  # fmt: skip
    waiting = approval.list_plans(ws, job, "cooling-off")
    made, written = plan(ws, job=job, as_of=as_of, report=report, more_reports=more_reports)
    return ReviewOutcome(runs, waiting, made, written)
