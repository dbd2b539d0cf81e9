"""Loading a catalog directory into one validated, immutable :class:`Catalog`.

A catalog is a directory with ``policies/``, ``connectors/``, ``jobs/`` and an optional
``retention.yaml``. Loading reads every file, collects *every* problem (file, line, policy,
key) and raises one :class:`CatalogError` listing them all, so a records manager fixes a
catalog in one pass. Checks that need the live sources are in ``check.py``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from retention.catalog import yamlfile
from retention.catalog.globs import globs_may_overlap
from retention.catalog.model import (
    FilesSource,
    Job,
    PlannedPolicy,
    Policy,
    PolicyFile,
    Register,
    Settings,
    SourceSpec,
    SqlSource,
    unbound_keys,
)
from retention.catalog.records_plan import RecordsPlan, RecordType
from retention.catalog.yamlfile import Located, YamlProblem
from retention.connectors import KINDS
from retention.errors import CatalogError, Problem, UsageError, did_you_mean

SETTINGS_FILE = "retention.yaml"
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class BoundPolicy:
    """A policy together with its register and the file it came from."""

    register: Register
    policy: Policy
    file: str
    line: int | None = None
    """The line of the policy's ``match:`` key in ``file`` (of its ``id`` without one)."""
    plan_record: RecordType | None = None
    """The record type the policy cites, as the register's records-management plan has it
    now (None: no citation, or the plan no longer has it)."""

    @property
    def name(self) -> str:
        return f"{self.register.id}/{self.policy.id}"


@dataclass(frozen=True)
class UnboundPolicy:
    """A policy imported from the records-management plan, not yet bound to its source."""

    register: Register
    policy: PlannedPolicy
    file: str
    line: int | None = None

    @property
    def name(self) -> str:
        return f"{self.register.id}/{self.policy.id}"


@dataclass(frozen=True)
class Catalog:
    root: Path
    settings: Settings
    sources: Mapping[str, SourceSpec]
    registers: Mapping[str, Register]
    policies: tuple[BoundPolicy, ...]
    jobs: Mapping[str, Job]
    files: Mapping[str, str] = field(default_factory=dict)  # source/job id -> file
    unbound: tuple[UnboundPolicy, ...] = ()
    """Policies imported from a records-management plan that still lack their bindings."""
    records_plans: Mapping[str, RecordsPlan] = field(default_factory=dict)
    """Register id -> the records-management plan it follows (``records_plan:``)."""

    def resolve(self, path: str) -> Path:
        """A settings path, relative to the catalog directory unless absolute."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.root / candidate

    @property
    def state_url(self) -> str:
        return resolve_sqlite_url(self.settings.state, self.root)

    def source_url(self, source: SourceSpec) -> str:
        """Where a source is: a database URL, or a file share's absolute root directory."""
        if isinstance(source, FilesSource):
            return str(self.resolve(source.root).resolve())
        return resolve_sqlite_url(source.url, self.root)

    def select(self, names: Sequence[str] = ("*",)) -> list[BoundPolicy]:
        """Policies named by ``REGISTER/POLICY``, a unique policy id, or a glob of either."""
        chosen: dict[str, BoundPolicy] = {}
        for name in names:
            found = self._match(name)
            if not found:
                known = ", ".join(p.name for p in self.policies)
                raise UsageError(f"no policy matches {name!r}; the catalog has: {known}")
            chosen.update((p.name, p) for p in found)
        return [p for p in self.policies if p.name in chosen]

    def _match(self, name: str) -> list[BoundPolicy]:
        if any(ch in name for ch in "*?["):
            return [
                p
                for p in self.policies
                if fnmatch.fnmatchcase(p.name, name) or fnmatch.fnmatchcase(p.register.id, name)
            ]
        exact = [p for p in self.policies if name in (p.name, p.register.id)]
        if exact:
            return exact
        by_id = [p for p in self.policies if p.policy.id == name]
        if len(by_id) > 1:
            options = ", ".join(p.name for p in by_id)
            raise UsageError(f"policy id {name!r} is ambiguous; use one of: {options}")
        return by_id

    def timezone_of(self, job_id: str | None) -> str:
        """The zone a job's schedule is meant in: the job's own ``timezone``, else the
        catalog's (also for runs of no job of ``jobs/``)."""
        job = self.jobs.get(job_id) if job_id is not None else None
        return (job.timezone if job is not None else None) or self.settings.timezone

    def source_identities(self) -> dict[str, str]:
        """Each connector's id → where it leads: a database (backend, host, port, database
        or SQLite file; no user, password or driver) or a share's root directory. Two
        connectors to one place are one source to the rules that keep policies apart."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        out: dict[str, str] = {}
        for source_id, spec in self.sources.items():
            url = self.source_url(spec)
            if isinstance(spec, FilesSource):
                out[source_id] = f"files:{url}"
                continue
            try:
                parsed = make_url(url)
            except ArgumentError:
                out[source_id] = url
                continue
            backend, database = parsed.get_backend_name(), parsed.database or ""
            if backend == "sqlite" and database and not database.startswith(":"):
                database = str(Path(database).resolve())  # one file, however it is spelt
            out[source_id] = f"{backend}://{parsed.host or ''}:{parsed.port or ''}/{database}"
        return out

    def today(self, job_id: str | None = None) -> tuple[date, str]:
        """ "Today" for a run of ``job_id``, and the zone it is today in: the earlier of the
        job's local day and the catalog's. Retention counts the catalog's calendar days, so
        a job whose zone is ahead (Pacific/Kiritimati against Europe/Helsinki) never makes a
        run act on a day that has not begun where the records are kept."""
        from retention.catalog.clock import today

        zones = dict.fromkeys((self.timezone_of(job_id), self.settings.timezone))
        return min((today(zone), zone) for zone in zones)

    def job(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise UsageError(f"no job {job_id!r} in jobs/; the catalog has: {known}")
        return self.jobs[job_id]


def resolve_sqlite_url(url: str, root: Path) -> str:
    """Make a relative ``sqlite:///file.db`` (any driver) resolve against the catalog directory."""
    scheme, sep, rest = url.partition(":///")
    sqlite = scheme == "sqlite" or scheme.startswith("sqlite+")
    if sep and sqlite and rest and not rest.startswith(("/", ":memory:")):
        return f"{scheme}:///{(root / rest).resolve()}"
    return url


def load_catalog(root: Path | str, environ: Mapping[str, str] | None = None) -> Catalog:
    """Load and statically validate a catalog; raise CatalogError listing every problem."""
    catalog, problems = read_catalog(root, environ)
    if problems:
        raise CatalogError(problems)
    return catalog


def read_catalog(
    root: Path | str, environ: Mapping[str, str] | None = None
) -> tuple[Catalog, list[Problem]]:
    """What of a catalog could be loaded, and every problem found doing so.

    ``retention check`` uses the partial catalog to go on to the live checks, so one pass
    lists static and live problems together. Only a directory that is not a catalog at all
    raises.
    """
    root = Path(root).resolve()
    problems: list[Problem] = []
    if not root.is_dir():
        raise CatalogError(Problem(str(root), "the catalog directory does not exist"))
    missing = [f"{d}/" for d in ("policies", "connectors", "jobs") if not (root / d).is_dir()]
    if missing:
        raise CatalogError(
            Problem(str(root), f"not a catalog: missing folder(s) {', '.join(missing)}")
        )

    settings = _load_settings(root, environ, problems)
    files: dict[str, str] = {}
    sources: dict[str, SourceSpec] = {}
    before = len(problems)
    for display, doc in _documents(root, "connectors", environ, problems):
        source = _load_source(display, doc, problems)
        if source is None:
            continue
        if isinstance(source, SqlSource) and source.timezone is None:  # days as the catalog's
            zone = (settings or Settings()).timezone
            source = source.model_copy(update={"timezone": zone})
        if source.id in sources:
            problems.append(_dup(display, doc, "id", f"connector {source.id!r}", files[source.id]))
            continue
        sources[source.id], files[source.id] = source, display
    # A reference into a connector file that failed to load is not reported a second time.
    sources_complete = len(problems) == before

    registers: dict[str, Register] = {}
    register_files: dict[str, str] = {}
    policies: list[BoundPolicy] = []
    before = len(problems)
    policy_docs = list(_documents(root, "policies", environ, problems))
    policies_complete = len(problems) == before
    unbound: list[UnboundPolicy] = []
    for display, whole in policy_docs:
        doc, planned = _split_unbound(whole, display, problems)
        if planned is not None and not doc.get("policies"):  # only policies still unbound
            register_only = _validate(Register, doc.get("register") or Located(), display,
                                      problems)  # fmt: skip
            if register_only is not None and register_only.id not in registers:
                registers[register_only.id], register_files[register_only.id] = (
                    register_only, display)  # fmt: skip
                unbound.extend(UnboundPolicy(register_only, p, display, n) for p, n in planned)
            continue
        parsed = _validate(PolicyFile, doc, display, problems)
        if parsed is None:
            policies_complete = False
            parsed = _salvaged(doc)  # its sound policies are still checked, live too
            if parsed is None:
                continue
        register = parsed.register_
        if register.id in registers:
            problems.append(
                _dup(
                    display,
                    doc,
                    "register",
                    f"register {register.id!r}",
                    register_files[register.id],
                )
            )
            policies_complete = False
            continue
        registers[register.id], register_files[register.id] = register, display
        unbound.extend(UnboundPolicy(register, p, display, n) for p, n in planned or ())
        seen: set[str] = set()
        for index, policy in enumerate(parsed.policies):
            line = _policy_line(doc, index, "id")
            if policy.id in seen:
                problems.append(
                    Problem(display, "duplicate policy id in this register", line, policy.id, "id")
                )
                continue
            seen.add(policy.id)
            where = _policy_line(doc, index, "match") or line
            policies.append(BoundPolicy(register, policy, display, where))
            problems.extend(
                _static_policy_problems(display, doc, index, policy, sources, sources_complete)
            )

    jobs: dict[str, Job] = {}
    for display, doc in _documents(root, "jobs", environ, problems):
        job = _validate(Job, doc, display, problems)
        if job is None:
            continue
        if job.id in jobs:
            problems.append(_dup(display, doc, "id", f"job {job.id!r}", files["job:" + job.id]))
            continue
        jobs[job.id], files["job:" + job.id] = job, display

    plans = _records_plans(root, settings or Settings(), registers, register_files, problems)
    policies = [_with_plan_record(p, plans) for p in policies]
    problems.extend(_uncited_plan_problems(settings or Settings(), policies, unbound))
    catalog = Catalog(
        root=root,
        settings=settings or Settings(),
        sources=sources,
        registers=registers,
        policies=tuple(policies),
        jobs=jobs,
        files=files,
        unbound=tuple(unbound),
        records_plans=plans,
    )
    if policies_complete:  # else a job may name a policy of a file that failed to load
        problems.extend(_job_problems(catalog))
        problems.extend(_notify_problems(catalog))
        problems.extend(_approval_rule_problems(catalog))
    problems.extend(_overlap_problems(catalog.policies, catalog.source_identities()))
    return catalog, problems


def _notify_problems(catalog: Catalog) -> list[Problem]:
    """Records managers listed for a register the catalog does not have (a typo would leave
    its plans unannounced)."""
    notify = catalog.settings.notify
    named = notify.email.records_managers if notify and notify.email else {}
    return [
        Problem(SETTINGS_FILE, f"no register {register!r} in the catalog; registers: "
                f"{', '.join(sorted(catalog.registers))} (or \"*\" for every other)",
                key=f"notify.email.records_managers.{register}")
        for register in named if register != "*" and register not in catalog.registers
    ]  # fmt: skip


def _split_unbound(
    doc: Located, display: str, problems: list[Problem]
) -> tuple[Located, list[tuple[PlannedPolicy, int | None]] | None]:
    """The file without its policies that are imported from the plan and not yet bound, and
    those policies. They are valid as they are: disabled, and named by ``retention check``."""
    items = doc.get("policies")
    if not isinstance(items, list) or not any(unbound_keys(i) for i in items):
        return doc, None
    kept: list[Any] = []
    planned: list[tuple[PlannedPolicy, int | None]] = []
    for item in items:
        if not unbound_keys(item):
            kept.append(item)
            continue
        line = item.line if isinstance(item, Located) else None
        try:
            planned.append((PlannedPolicy.model_validate(item), line))
        except ValidationError as exc:
            for error in exc.errors():
                message = str(error["msg"]).removeprefix("Value error, ")
                where = ".".join(str(part) for part in error["loc"]) or None
                problems.append(Problem(display, message, line, item.get("id"), where))
    rest = Located(doc)
    rest.line, rest.lines = doc.line, doc.lines
    rest["policies"] = kept
    return rest, planned


def _records_plans(
    root: Path,
    settings: Settings,
    registers: Mapping[str, Register],
    register_files: Mapping[str, str],
    problems: list[Problem],
) -> dict[str, RecordsPlan]:
    """Each register's records-management plan, read once per file; a plan that cannot be
    read is a problem of the file that names it."""
    from retention.catalog.records_plan import RecordsPlanError, load_records_plan

    loaded: dict[str, RecordsPlan | None] = {}
    out: dict[str, RecordsPlan] = {}
    default = settings.records_plan.file if settings.records_plan is not None else None
    for register_id, register in registers.items():
        name = register.records_plan or default
        if name is None:
            continue
        if name not in loaded:
            path = Path(name) if Path(name).is_absolute() else root / name
            try:
                loaded[name] = load_records_plan(path, name)
            except RecordsPlanError as exc:
                by = register_files[register_id] if register.records_plan else SETTINGS_FILE
                message = f"the records-management plan {name} cannot be read (see below)"
                problems.append(Problem(by, message, key="records_plan"))
                problems.extend(exc.problems)
                loaded[name] = None
        plan = loaded[name]
        if plan is not None:
            out[register_id] = plan
    return out


def _uncited_plan_problems(
    settings: Settings, policies: Sequence[BoundPolicy], unbound: Sequence[UnboundPolicy]
) -> list[Problem]:
    """A policy citing a plan decision where no plan file is named cannot be checked."""
    out: list[Problem] = []
    if settings.records_plan is not None:
        return out
    message = (
        "cites a records-management plan, but neither its register nor retention.yaml "
        "names the plan's file (records_plan:)"
    )
    cited: list[BoundPolicy | UnboundPolicy] = [*policies, *unbound]
    for bound in cited:
        if bound.policy.records_plan is not None and not bound.register.records_plan:
            out.append(Problem(bound.file, message, bound.line, bound.policy.id, "records_plan"))
    return out


def _with_plan_record(bound: BoundPolicy, plans: Mapping[str, RecordsPlan]) -> BoundPolicy:
    citation = bound.policy.records_plan
    plan = plans.get(bound.register.id)
    if citation is None or plan is None:
        return bound
    _, record_type = plan.find(citation.class_code, citation.record_type)
    return bound if record_type is None else replace(bound, plan_record=record_type)


def _salvaged(doc: Located) -> PolicyFile | None:
    """The register and those policies of a file that are valid on their own, when the file
    as a whole is not: one mistyped key must not hide the file's other problems. Their
    problems were reported already; the catalog does not load, only checks go on."""
    items = doc.get("policies")
    if not isinstance(items, list):
        return None
    sound = []
    for item in items:
        try:
            sound.append(Policy.model_validate(item))
        except ValidationError:
            continue
    try:
        return PolicyFile.model_validate({"register": doc.get("register"), "policies": sound})
    except ValidationError:
        return None


def _documents(
    root: Path, folder: str, environ: Mapping[str, str] | None, problems: list[Problem]
) -> Iterable[tuple[str, Located]]:
    paths = sorted([*(root / folder).glob("*.yaml"), *(root / folder).glob("*.yml")])
    for path in paths:
        display = f"{folder}/{path.name}"
        try:
            doc = yamlfile.load(path, display, environ)
        except YamlProblem as exc:
            problems.append(exc.problem)  # the catalog does not load: this stays a problem
            if not isinstance(exc.recovered, Located):
                continue
            doc = exc.recovered  # checked all the same, so its other problems show now
        if not isinstance(doc, Located):
            problems.append(Problem(display, "expected a mapping at the top of the file", 1))
            continue
        yield display, doc


def _load_settings(
    root: Path, environ: Mapping[str, str] | None, problems: list[Problem]
) -> Settings | None:
    path = root / SETTINGS_FILE
    if not path.exists():
        return Settings()
    try:
        doc = yamlfile.load(path, SETTINGS_FILE, environ)
    except YamlProblem as exc:
        problems.append(exc.problem)
        return None
    if doc is None:
        return Settings()
    if not isinstance(doc, Located):
        problems.append(Problem(SETTINGS_FILE, "expected a mapping", 1))
        return None
    return _validate(Settings, doc, SETTINGS_FILE, problems)


def _load_source(display: str, doc: Located, problems: list[Problem]) -> SourceSpec | None:
    kind = doc.get("kind")
    if kind not in KINDS:
        known = ", ".join(sorted(KINDS))
        problems.append(
            Problem(
                display,
                f"unknown connector kind {kind!r}; known kinds: {known}",
                doc.line_of("kind"),
                key="kind",
            )
        )
        return None
    model: type[SqlSource] | type[FilesSource] = FilesSource if kind == "files" else SqlSource
    return _validate(model, doc, display, problems)


def _validate(model: type[_M], doc: Located, display: str, problems: list[Problem]) -> _M | None:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, model, doc, display))
        return None


def _problems_from(
    exc: ValidationError, model: type[BaseModel], doc: Located, display: str
) -> list[Problem]:
    """Turn pydantic's errors into Problems that name file, line, policy and key."""
    out: list[Problem] = []
    errors = exc.errors()
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and any(
            len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc
            for other in errors
        ):
            continue  # every item failed: those errors say why, the count adds nothing
        node: Any = doc
        line: int | None = doc.line
        policy: str | None = None
        keys: list[str] = []
        for part in loc:
            if isinstance(part, int):  # an item of a list: keys restart inside a mapping
                node = node[part] if isinstance(node, list) and part < len(node) else None
                if isinstance(node, Located):
                    line = node.line
                    policy = node.get("id") if isinstance(node.get("id"), str) else policy
                    keys = []
                elif keys:
                    keys[-1] += f"[{part}]"
                continue
            if isinstance(node, Located) and part in node:
                line = node.line_of(part)
            node = node.get(part) if isinstance(node, Located) else None
            keys.append(part)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"].endswith("_type") or error["type"].endswith("_parsing"):
            message += f" (got {error.get('input')!r})"
        key = ".".join(keys) or None
        if error["type"] == "extra_forbidden":
            container = _container(model, loc)
            names = [f.alias or n for n, f in container.model_fields.items()]
            hint = did_you_mean(loc[-1], names)
            message = f"unknown key ({hint}allowed here: {', '.join(names)})"
        elif error["type"] == "literal_error":
            expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
            message += f" (got {error.get('input')!r}; {did_you_mean(error.get('input'), expected)}"
            message = message.rstrip("; ") + ")"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif key is None:
            # A rule spanning several keys names its key first: "retain: permanent admits..."
            head, sep, rest = message.partition(": ")
            if sep and head in Policy.model_fields:
                key, message = head, rest
                if isinstance(node, Located) and head in node:
                    line = node.line_of(head)
        out.append(Problem(display, message, line, policy, key))
    return out


def _container(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel]:
    if "policies" in loc and model is PolicyFile:
        return Policy
    if loc and loc[0] == "register" and model is PolicyFile:
        return Register
    return model


def _policy_line(doc: Located, index: int, key: str) -> int | None:
    items = doc.get("policies")
    item = items[index] if isinstance(items, list) and index < len(items) else None
    return item.line_of(key) if isinstance(item, Located) else None


def _dup(display: str, doc: Located, key: str, what: str, first: str) -> Problem:
    return Problem(
        display, f"duplicate {what}, first defined in {first}", doc.line_of(key), key=key
    )


def _static_policy_problems(
    display: str,
    doc: Located,
    index: int,
    policy: Policy,
    sources: Mapping[str, SourceSpec],
    sources_complete: bool = True,
) -> list[Problem]:
    out: list[Problem] = []
    if policy.connector not in sources and sources_complete:
        known = ", ".join(sorted(sources)) or "none"
        out.append(
            Problem(
                display,
                f"unknown connector {policy.connector!r} "
                f"({did_you_mean(policy.connector, sources)}connectors/ has: {known})",
                _policy_line(doc, index, "connector"),
                policy.id,
                "connector",
            )
        )
    kind = getattr(sources.get(policy.connector), "kind", None)
    if kind == "sql" and policy.table is None:
        out.append(Problem(display, f"connector {policy.connector!r} is a database: name a "
                           "table, not a path", _policy_line(doc, index, "path"), policy.id,
                           "path"))  # fmt: skip
    if kind == "files" and policy.path is None:
        out.append(Problem(display, f"connector {policy.connector!r} is a file share: give a "
                           "path glob, not a table", _policy_line(doc, index, "table"),
                           policy.id, "table"))  # fmt: skip
    share = policy.attachments.connector if policy.attachments else None
    if (
        share is not None
        and sources_complete
        and getattr(sources.get(share), "kind", "") != "files"
    ):
        out.append(
            Problem(
                display,
                f"attachments: connector {share!r} must be a file share (kind: files)",
                _policy_line(doc, index, "attachments"),
                policy.id,
                "attachments.connector",
            )
        )
    return out


def _job_problems(catalog: Catalog) -> list[Problem]:
    out: list[Problem] = []
    for job in catalog.jobs.values():
        display = catalog.files.get("job:" + job.id, "jobs/")
        for name in job.policies:
            try:
                catalog.select([name])
            except UsageError as exc:
                out.append(Problem(display, str(exc), key="policies"))
    return out


def _approval_rule_problems(catalog: Catalog) -> list[Problem]:
    """A four-eyes rule naming no register would protect nothing: a typo, refused."""
    rules = catalog.settings.approvals
    return [
        Problem(SETTINGS_FILE, f"no register {name!r} in policies/ (registers: "
                f"{', '.join(catalog.registers) or 'none'})",
                key="approvals.two_people_registers")
        for name in rules.two_people_registers if name not in catalog.registers
    ]  # fmt: skip


def _overlap_problems(
    policies: Sequence[BoundPolicy], sources: Mapping[str, str] | None = None
) -> list[Problem]:
    """Two enabled policies may not destroy the same rows.

    With different rules the records' fate depends on which runs first; with the same rule
    each would certify the same disposal again. Either way it is a catalog mistake. Here
    values are compared as written; ``retention check`` compares them again as each source
    does (:func:`retention.enforce.check.check`), where ``asiakassopimus`` may equal
    ``ASIAKASSOPIMUS``.
    """
    out: list[Problem] = []
    for first, second in destroying_pairs(policies, sources):
        if may_overlap(first.policy, second.policy):
            out.append(overlap_problem(first, second))
    return out


def destroying_pairs(
    policies: Sequence[BoundPolicy], sources: Mapping[str, str] | None = None
) -> Iterator[tuple[BoundPolicy, BoundPolicy]]:
    """Pairs of enabled destroying policies that read the same table (or overlapping globs)
    of the same source. ``sources`` maps connector ids to where they lead
    (:meth:`Catalog.source_identities`): two connectors to one database are one source."""
    where = sources or {}
    destroying = [p for p in policies if p.policy.destroys and p.policy.enabled]
    for i, first in enumerate(destroying):
        for second in destroying[i + 1 :]:
            a, b = first.policy, second.policy
            a_source, b_source = (
                where.get(a.connector, a.connector),
                where.get(b.connector, b.connector),
            )
            if (a_source, a.location) != (b_source, b.location) and not (
                a_source == b_source
                and a.path is not None
                and b.path is not None
                and globs_may_overlap(a.path, b.path)
            ):
                continue
            yield first, second


def overlap_problem(first: BoundPolicy, second: BoundPolicy, how: str = "") -> Problem:
    """The problem of ``second`` destroying rows ``first`` destroys, naming both."""
    same = "the same rule" if _rule(first.policy) == _rule(second.policy) else "a different rule"
    where = first.file if first.line is None else f"{first.file}:{first.line}"
    return Problem(
        second.file,
        f"destroys rows that {first.name} ({where}) also destroys, with {same}{how}; "
        "make their match: filters disjoint",
        second.line,
        second.policy.id,
        "match",
    )


def may_overlap(a: Policy, b: Policy, equal: Callable[[str, Any, Any], bool] | None = None) -> bool:
    """Whether some record can meet both match filters: on every column both filter, some
    value of one equals some value of the other — by ``equal(column, x, y)``, the source's
    comparison, or else as written."""
    for column in set(a.match) & set(b.match):
        left, right = _as_set(a.match[column]), _as_set(b.match[column])
        if left & right:
            continue
        if equal is None or not any(equal(column, x, y) for x in left for y in right):
            return False
    return True


def _as_set(value: Any) -> set[Any]:
    return set(value) if isinstance(value, tuple) else {value}


def _rule(policy: Policy) -> tuple[Any, ...]:
    return (
        policy.trigger,
        str(policy.retain),
        policy.until,
        policy.count_from,
        policy.action,
        policy.then,
        tuple(sorted(policy.anonymise.items())),
        policy.trigger_rule,
        policy.unless,
    )
