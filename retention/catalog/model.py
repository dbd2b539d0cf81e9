"""The catalog's typed, frozen model: what a records manager writes, validated once.

YAML is turned into these objects at the boundary (``catalog.py``); the engine never
touches raw dictionaries. Unknown keys are errors (``extra="forbid"``), so a misspelt
``retian:`` cannot silently leave a rule out.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    field_validator,
    model_validator,
)

from retention.catalog.clock import CountFrom, Duration, parse_period

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)]
Scalar = str | int | float | bool
Action = Literal["anonymise", "delete", "archive", "review"]
Strategy = Literal["erase", "redact", "year", "pseudonym"]

#: Actions that destroy or alter data in the source.
DESTROYING: frozenset[str] = frozenset({"anonymise", "delete"})


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# -- batches sized by time ---------------------------------------------------------------


#: The default cap on a batch. A run holds two batches at once (one decided while the one
#: before waits for its certificates), about 2 kB a record in Python objects: at 5,000 an
#: operator's ``retention run`` of a 1M- or 10M-row SQLite table peaked at 117 MiB where
#: 10,000 took it to 149 MiB and ran no faster (docs/performance.md).
LARGEST_BATCH = 5_000


class Batches(Frozen):
    """``batches:`` in ``retention.yaml``: how a run sizes its batches after the first.

    The first batch has ``batch_size`` records; each later one is sized so that its source
    transaction takes about ``target_seconds`` at the rate of the one before (growing at
    most twofold a batch, shrinking at once after a slow one), never more than
    ``max_size``."""

    target_seconds: float | None = Field(default=0.5, gt=0, le=60)
    """How long one batch's source transaction should hold its rows; None: every batch
    has ``batch_size`` records."""
    max_size: int | None = Field(default=None, ge=1, le=50_000)
    """The largest batch; None: :data:`LARGEST_BATCH`, or ``batch_size`` where larger."""


# --- approvals: who must approve a plan (four eyes) -------------------------------------------


class ApprovalRules(Frozen):
    """``approvals:`` in ``retention.yaml``: what a plan needs before it may run.

    Without rules one approval is enough, as ``retention approve PLAN --by NAME`` gives. Each
    rule can only demand more: two approvals from distinct signed-in people for the plans of
    some registers or above a number of records, and an archivist's approval for a plan that
    transfers records to the archive."""

    two_people_registers: tuple[Identifier, ...] = ()
    """Plans disposing of records of these registers need two approvals from distinct people."""
    two_people_above: int | None = Field(default=None, ge=0)
    """Plans disposing of more than this many records need two approvals from distinct
    people (None: no such limit)."""
    archivist_for_archive: StrictBool = False
    """A plan with records to archive needs one of its approvals from an archivist."""


# --- records-management plan (JHS 191 TOS) ------------------------------------------------


class RecordsPlanSettings(Frozen):
    """``records_plan:`` in ``retention.yaml``: the TOS every register follows unless it
    names its own (``register.records_plan``)."""

    file: str
    """A JHS 191 XML file or helerm's Excel template, relative to the catalog directory."""


class RecordsPlanCitation(Frozen):
    """``records_plan:`` of a policy: the plan decision the rule enforces, as imported.

    ``class_code`` and ``record_type`` locate it in the plan; the rest is what the plan said
    when the policy was imported or last re-imported (``retention plan-import``), kept so a
    reader sees the decision beside the rule and a later plan's changes can be named.
    """

    class_code: str
    """``Luokitustunnus``, e.g. ``05.04``."""
    record_type: str
    """The record type's id (``Asiakirjatieto``'s ``tos:id``)."""
    tos: str | None = None
    """The plan's id (``TosTiedot``'s ``tos:id``)."""
    version: str | None = None
    """``TosVersio``."""
    approved_on: date | None = None
    """``HyvaksyttyPvm``."""
    retention: str | None = None
    """The plan's period as ``retain:`` writes it (``SailytysajanPituusArvo``)."""
    start_event: str | None = None
    """``SailytysajanLaskentaperusteTeksti``: what the period counts from."""
    retention_reason: str | None = None
    """``SailytysajanPerusteTeksti``."""
    personal_data: int | None = Field(default=None, ge=1, le=5)
    """``HenkilotietoluonneKoodi``."""
    publicity: int | None = Field(default=None, ge=1, le=4)
    """``JulkisuusluokkaKoodi``."""
    secrecy_years: int | None = None
    secrecy_reason: str | None = None


#: What only a person can bind: where the records are and which date starts the clock.
BINDINGS = ("connector", "table", "key", "trigger")


def unbound_keys(item: Any) -> list[str]:
    """The bindings a disabled policy imported from the plan still lacks ([] when bound)."""
    if not isinstance(item, dict) or item.get("enabled") is not False:
        return []
    if "records_plan" not in item:
        return []
    missing = [] if item.get("connector") else ["connector"]
    if not item.get("table") and not item.get("path"):
        missing.append("table")
    if item.get("table") and not item.get("key"):
        missing.append("key")
    if not item.get("trigger") and not item.get("until"):
        missing.append("trigger")
    if item.get("action") == "anonymise" and not item.get("anonymise"):
        missing.append("anonymise")
    return missing


class PlannedPolicy(Frozen):
    """A policy imported from the plan that a person has not yet bound to its source.

    It is written ``enabled: false``; it never runs, and ``retention check`` names exactly
    what it still lacks. Every other key is one a :class:`Policy` has.
    """

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)
    id: Identifier
    enabled: Literal[False]
    records_plan: RecordsPlanCitation
    description: str | None = None
    retain: str | None = None
    action: Action | None = None
    deviation: str | None = None

    @model_validator(mode="after")
    def _known_keys(self) -> PlannedPolicy:
        unknown = sorted(set(self.model_extra or {}) - set(Policy.model_fields))
        if unknown:
            allowed = ", ".join(f.alias or n for n, f in Policy.model_fields.items())
            raise ValueError(f"{unknown[0]}: unknown key (allowed here: {allowed})")
        return self

    def missing(self) -> list[str]:
        return unbound_keys(self.model_dump(by_alias=True))


# --- end of records-management plan -------------------------------------------------------


class Settings(Frozen):
    """``retention.yaml``: where the state, the archive and the signing key live."""

    state: str = "sqlite:///retention-state.db"
    archive: str = "archive"
    signing_key: str = "keys/signing.pem"
    timezone: str = "Europe/Helsinki"
    batch_size: int = Field(default=1000, ge=1, le=50_000)
    """The first batch's records; later batches are sized by ``batches``."""
    batches: Batches = Batches()
    reports: str = "reports"
    """Where scheduled dry runs write their reports (relative to the catalog directory)."""
    report_language: Literal["en", "fi"] = "en"
    """The language of HTML plan reports and certificates of destruction when ``--lang`` is
    not given."""
    max_due_share: float | None = Field(default=None, gt=0, le=1)
    """Default for every destroying policy: refuse when more than this share of its records
    is due at once (None: no such limit)."""
    plan_expires_after: Duration = Duration(days=14)
    """A stored plan older than this can no longer be approved or executed: the source has
    moved on since the records manager looked at it."""
    approval_cooling_off: Duration | None = None
    """How long after its approval a plan must wait before it may run (None: at once)."""
    records_plan: RecordsPlanSettings | None = None
    """The records-management plan (TOS) policies cite; a register may name its own."""
    lock_lease_seconds: int = Field(default=300, ge=5, le=86_400)
    """A run's locks outlive its last renewal by this long (renewed five times per lease):
    a killed run's locks are taken over that long after it died."""
    # Metrics and notifications (docs/monitoring.md)
    metrics_textfile: str | None = None
    """A node_exporter textfile (``*.prom``) each run rewrites with its metrics (cron)."""
    metrics_port: int | None = Field(default=None, ge=1, le=65_535)
    """Where ``retention scheduler`` serves ``/metrics`` (None: not served)."""
    metrics_address: str = "127.0.0.1"
    notify: Notify | None = None
    approvals: ApprovalRules = ApprovalRules()
    """Four-eyes rules: what approvals a plan needs before it may run."""
    web: Web = Field(default_factory=lambda: Web())
    """``retention serve``: sign-in and sessions of the web workspace."""

    @property
    def largest_batch(self) -> int:
        """The cap on a batch: ``batches.max_size``, else :data:`LARGEST_BATCH` or a larger
        ``batch_size``. A plan, which holds no rows locked, reads its pages at this size."""
        return self.batches.max_size or max(LARGEST_BATCH, self.batch_size)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("records_plan", mode="before")
    @classmethod
    def _plan_file(cls, value: Any) -> Any:
        return {"file": value} if isinstance(value, str) else value

    @field_validator("plan_expires_after", "approval_cooling_off", mode="before")
    @classmethod
    def _period(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_period(value)
        if value is None or isinstance(value, Duration):
            return value
        raise ValueError(f"expected a period like '14 days' or P14D, got {value!r}")

    @field_validator("plan_expires_after")
    @classmethod
    def _not_zero(cls, value: Duration) -> Duration:
        if value == Duration():
            raise ValueError("a plan that expires at once could never be executed")
        return value


# --------------------------------------------------------------------------------------------
# Notifications: the ``notify:`` block of retention.yaml (docs/monitoring.md)

NotifyEvent = Literal["plan-waiting", "plan-expiring", "run-failed", "hold-lapsing", "digest"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = (
    "plan-waiting", "plan-expiring", "run-failed", "hold-lapsing", "digest",
)  # fmt: skip
#: Events about a plan or hold go to the records managers of its registers; the rest to ``to``.
FOR_RECORDS_MANAGERS: frozenset[str] = frozenset({"plan-waiting", "plan-expiring", "hold-lapsing"})
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)]
Address = Annotated[str, Field(pattern=r"^[^@\s<>,]+@[^@\s<>,]+$", max_length=320)]


class EmailChannel(Frozen):
    """``notify.email``: messages over SMTP, credentials from environment variables."""

    host: str
    port: int = Field(default=587, ge=1, le=65_535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` (port 587), ``tls`` (implicit TLS, port 465) or ``none`` (a local relay)."""
    ca_file: str | None = None
    """A CA bundle the server's certificate is checked against (default: the system's)."""
    sender: Address = Field(alias="from")
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    to: tuple[Address, ...] = ()
    """Operators: failed runs and the daily digest."""
    records_managers: dict[str, tuple[Address, ...]] = Field(default_factory=dict)
    """Register id (or ``"*"`` for every other register) → who reviews its plans and holds."""
    events: tuple[NotifyEvent, ...] = NOTIFY_EVENTS
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _credentials_paired(self) -> EmailChannel:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both username_env and password_env, or neither")
        return self


class Webhook(Frozen):
    """``notify.webhooks[]``: a JSON POST signed with HMAC-SHA256 (docs/monitoring.md)."""

    url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)]
    secret_env: EnvName
    """The environment variable holding the shared signing secret."""
    events: tuple[NotifyEvent, ...] = NOTIFY_EVENTS
    timeout_seconds: float = Field(default=10.0, gt=0, le=600)


class Notify(Frozen):
    """``notify:`` — who hears of a waiting plan, a failed run, a lapsing hold, and how."""

    language: Literal["en", "fi"] | None = None
    """The messages' language (default: ``report_language``)."""
    workspace_url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)] | None = None
    """Links in messages point here (``<url>/plans/<plan id>``); else to the report file."""
    email: EmailChannel | None = None
    webhooks: tuple[Webhook, ...] = ()
    plan_expiry_warning: Duration = Duration(days=2)
    """A pending plan is announced as about to expire on the day this long before it does."""
    hold_lapse_warning: Duration = Duration(days=14)
    """A hold is announced as about to lapse on the day this long before its ``until``."""
    daily_at: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "07:00"
    """When ``retention scheduler`` sends the day's notices and the digest (catalog's zone)."""
    digest: StrictBool = True
    attempts: int = Field(default=3, ge=1, le=10)
    """Tries per message before it is given up (logged and counted)."""
    backoff_seconds: float = Field(default=2.0, ge=0, le=300)
    """Wait before the second try; doubled before each further one."""

    @field_validator("plan_expiry_warning", "hold_lapse_warning", mode="before")
    @classmethod
    def _period(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_period(value)
        if isinstance(value, Duration):
            return value
        raise ValueError(f"expected a period like '2 days' or P2D, got {value!r}")


class SqlSource(Frozen):
    """``kind: sql`` — any database SQLAlchemy can reach."""

    id: Identifier
    kind: Literal["sql"]
    url: str
    schema_: str | None = Field(default=None, alias="schema")
    description: str | None = None
    timezone: str | None = None
    """The zone whose calendar days the source's time-zone-aware timestamps fall on (a
    PostgreSQL ``timestamptz`` trigger); the catalog's ``timezone`` when not given."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)


class FilesSource(Frozen):
    """``kind: files`` — a directory tree (a network share), one record per file."""

    id: Identifier
    kind: Literal["files"]
    root: str
    description: str | None = None


SourceSpec = SqlSource | FilesSource


class Register(Frozen):
    """The register (rekisteri) a privacy notice describes."""

    id: Identifier
    name: str
    controller: str
    source: str
    statutory: StrictBool = False
    """A statutory register: erasure requests are refused (GDPR 17(3)(b))."""
    erasure_exemption: str | None = None
    """Why erasure requests are refused although the register is not statutory, e.g.
    archiving or research in the public interest (GDPR 17(3)(d))."""
    records_plan: str | None = None
    """This register's records-management plan (TOS) file, when not ``retention.yaml``'s."""

    @property
    def erasure_refusal(self) -> str | None:
        """The reason this register refuses erasure requests, or None if it honours them."""
        if self.statutory:
            return "a statutory register: the right to erasure does not apply (GDPR 17(3)(b))"
        return self.erasure_exemption


class Retain(Frozen):
    """``retain:`` parsed: a duration, or permanent."""

    permanent: bool = False
    duration: Duration | None = None

    @classmethod
    def parse(cls, value: Any) -> Retain:
        if not isinstance(value, str):
            raise ValueError(
                f"expected a period like P10Y or '10 years', or 'permanent'; got {value!r}"
            )
        if value.strip() == "permanent":
            return cls(permanent=True)
        return cls(duration=parse_period(value))

    def __str__(self) -> str:
        return "permanent" if self.permanent else str(self.duration)


class Unless(Frozen):
    """An exception written into the rule: a due record meeting it is kept, with a reason."""

    column: str
    equals: Scalar | None = None
    in_: tuple[Scalar, ...] | None = Field(default=None, alias="in")
    not_empty: StrictBool = False
    reason: str

    @model_validator(mode="after")
    def _one_test(self) -> Unless:
        given = [self.equals is not None, self.in_ is not None, self.not_empty]
        if sum(given) != 1:
            raise ValueError("unless: each condition needs exactly one of equals, in, not_empty")
        return self

    def describe(self) -> str:
        if self.not_empty:
            return f"{self.column} is not empty"
        if self.in_ is not None:
            return f"{self.column} in {list(self.in_)}"
        return f"{self.column} = {self.equals!r}"


class Attachments(Frozen):
    """A column of relative paths to files on a file share that belong to each row."""

    column: str
    connector: Identifier


class Policy(Frozen):
    """One retention rule over one table (or file tree) of one source."""

    _fingerprint: str | None = PrivateAttr(default=None)
    id: Identifier
    description: str | None = None
    connector: Identifier
    table: str | None = None
    path: str | None = None
    """For a file-share connector: a glob under its root, e.g. ``interviews/**/*.wav``."""
    key: tuple[str, ...] = ("path",)
    subject: str | None = None
    secret: tuple[str, ...] = ()
    """Columns marking a person whose data is secret (turvakielto, "tiedot salaiset",
    luovutuskielto): such a record appears in reports and certificates by key and decision
    only."""
    match: dict[str, Scalar | tuple[Scalar, ...]] = Field(default_factory=dict)
    trigger: tuple[str, ...] = ()
    """The date the clock starts from; several columns combine by ``trigger_rule``."""
    trigger_rule: Literal["latest", "earliest"] = "latest"
    unless: tuple[Unless, ...] = ()
    retain: Retain | None = None
    until: date | None = None
    count_from: CountFrom = "event"
    action: Action
    then: Literal["keep", "delete", "anonymise"] | None = None
    anonymise: dict[str, Strategy] = Field(default_factory=dict)
    max_per_run: int | None = Field(default=None, ge=0)
    max_due_share: float | None = Field(default=None, gt=0, le=1)
    """Refuse when more than this share of the policy's records is due at once."""
    legal_basis: str | None = None
    enabled: StrictBool = True
    attachments: Attachments | None = None
    """Files a row points at: archived with it and deleted when it is disposed of."""
    records_plan: RecordsPlanCitation | None = None
    """The records-management plan decision this rule enforces."""
    deviation: str | None = None
    """Why the rule departs from the retention its plan decision sets (shown in reports)."""

    @field_validator("key", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and not value:
            raise ValueError("the key needs at least one column")
        return value

    @field_validator("secret", "trigger", mode="before")
    @classmethod
    def _column_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("match", mode="before")
    @classmethod
    def _match_lists(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for column, item in value.items():
                if isinstance(item, list) and not item:
                    raise ValueError(f"match.{column}: an empty list would match no record")
            return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        return value

    @field_validator("retain", mode="before")
    @classmethod
    def _parse_retain(cls, value: Any) -> Any:
        if value is None or isinstance(value, Retain):
            return value
        return Retain.parse(value)

    @field_validator("path")
    @classmethod
    def _confined(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.replace("\\", "/").split("/")
        if value.startswith(("/", "~")) or ":" in parts[0] or ".." in parts:
            raise ValueError(
                f"{value!r} must be a relative glob inside the share (no '..', no absolute path)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if (self.table is None) == (self.path is None):
            raise ValueError("table: give table (sql) or path (files), exactly one")
        if self.table is not None and "key" not in self.model_fields_set:
            raise ValueError("key: is missing; name the table's key column(s)")
        if self.attachments is not None and self.table is None:
            raise ValueError("attachments: only a table's rows can point at files")
        if self.path is not None and self.key != ("path",):
            raise ValueError("key: a file-share policy is keyed by path; leave key out")
        has_clock = bool(self.trigger) or self.retain is not None
        if self.until is not None and has_clock:
            raise ValueError("until: give either trigger+retain or until, not both")
        if self.until is None and (not self.trigger or self.retain is None):
            missing = "trigger" if not self.trigger else "retain"
            raise ValueError(f"{missing}: is missing; give trigger+retain, or until")
        if "trigger_rule" in self.model_fields_set and len(self.trigger) < 2:
            raise ValueError("trigger_rule: only means something with several trigger columns")
        if self.until is not None and self.count_from != "event":
            raise ValueError("count_from: applies to trigger+retain, not to until")
        if self.retain is not None and self.retain.permanent and self.action != "archive":
            raise ValueError(
                f"retain: permanent admits only action: archive, not {self.action}; "
                "permanent records are never destroyed without a verified archive copy"
            )
        if self.then is not None and self.action != "archive":
            raise ValueError("then: is only for action: archive")
        anonymises = self.action == "anonymise" or self.then == "anonymise"
        if anonymises and not self.anonymise:
            raise ValueError("anonymise: must name at least one column and its strategy")
        if not anonymises and self.anonymise:
            raise ValueError("anonymise: is given but the action does not anonymise")
        chooses = {*self.trigger, *self.match, *(u.column for u in self.unless)}
        for column in self.anonymise:
            if column in self.key:
                raise ValueError(f"anonymise: cannot rewrite key column {column!r}")
            if column in chooses:
                raise ValueError(
                    f"anonymise: cannot rewrite {column!r}: the rule reads it to choose records, "
                    "so the change could not be verified"
                )
        attached = self.attachments.column if self.attachments is not None else None
        if anonymises and attached is not None and self.anonymise.get(attached) != "erase":
            raise ValueError(
                f"anonymise: erase the attachments column {attached!r}, or "
                "its files would outlive the data they belong to"
            )
        if self.legal_basis is not None and not self.legal_basis.strip():
            raise ValueError("legal_basis: is empty; name the basis or leave the key out")
        if self.deviation is not None and self.records_plan is None:
            raise ValueError("deviation: departs from nothing; cite the plan with records_plan:")
        if self.deviation is not None and not self.deviation.strip():
            raise ValueError("deviation: is empty; say why the rule departs from the plan")
        return self

    @property
    def location(self) -> str:
        """The table, or the path glob, the policy reads."""
        return self.table if self.table is not None else str(self.path)

    @property
    def destroys(self) -> bool:
        return self.action in DESTROYING or self.then in DESTROYING

    def fingerprint(self) -> str:
        """sha256 of the rule as loaded: certificates pin the exact rule they executed.

        Computed once per policy: every certificate of a run carries it.
        """
        if self._fingerprint is None:
            body = self.model_dump(mode="json", by_alias=True)
            body["retain"] = None if self.retain is None else str(self.retain)
            for added in ("records_plan", "deviation"):  # rules without them keep their hash
                if body[added] is None:
                    del body[added]
            # The standard encoder, not certificate.canonical: a rule may hold fractions
            # (max_due_share, match values), which orjson writes in another form.
            text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            self._fingerprint = hashlib.sha256(text.encode()).hexdigest()
        return self._fingerprint

    def describe_rule(self) -> str:
        """The rule in a sentence, for reports and ``explain``."""
        if self.until is not None:
            return f"kept until {self.until.isoformat()}, then {self.action}"
        start = "the end of the year of " if self.count_from == "year_end" else ""
        trigger = (
            self.trigger[0]
            if len(self.trigger) == 1
            else f"the {self.trigger_rule} of {', '.join(self.trigger)}"
        )
        then = f", then {self.then}" if self.then and self.then != "keep" else ""
        unless = "".join(f"; unless {u.describe()}" for u in self.unless)
        return f"{self.retain} from {start}{trigger}, then {self.action}{then}{unless}"


class PolicyFile(Frozen):
    """One file in ``policies/``: a register and its rules."""

    register_: Register = Field(alias="register")  # `register` would shadow ABCMeta.register
    policies: tuple[Policy, ...] = Field(min_length=1)


class Job(Frozen):
    """One file in ``jobs/``: when which policies run, and how."""

    id: Identifier
    description: str | None = None
    schedule: str
    timezone: str | None = None
    policies: tuple[str, ...] = Field(min_length=1)
    mode: Literal["enforce", "dry-run", "review"] = "enforce"
    report: tuple[Literal["json", "csv", "html"], ...] = Field(default=("json",), min_length=1)
    """The formats of a dry-run or review job's report, as ``plan --report`` writes them."""

    @field_validator("report", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("report")
    @classmethod
    def _each_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) < len(value):
            raise ValueError("names a format twice")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a five-field cron expression (like '30 2 * * *')")
        from retention.catalog.cron import cron_trigger  # the very rules the scheduler fires by

        try:
            cron_trigger(value, "UTC")
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from exc
        return value


# --------------------------------------------------------------------------------------------
# the web workspace (``retention serve``): ``web:`` in retention.yaml

#: What a person may do in the web workspace, from reading to approving and operating.
Role = Literal["viewer", "records-manager", "archivist", "dpo", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "records-manager", "archivist", "dpo", "operator")


class Oidc(Frozen):
    """``web.oidc``: sign-in through the organisation's OpenID Connect provider
    (Authorization Code with PKCE). The client secret is never written here: ``client_secret_env``
    names the environment variable that holds it."""

    issuer: str = Field(min_length=1, max_length=2000)
    client_id: str = Field(min_length=1, max_length=500)
    client_secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The variable holding the client secret; none for a public client (PKCE only)."""
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    roles_claim: str = Field(default="groups", min_length=1, max_length=200)
    """The claim of the ID token (or userinfo) whose values are mapped to roles."""
    roles: dict[Role, tuple[str, ...]] = Field(default_factory=dict)
    """Role -> the claim values (group names) that give it; a person with none is refused."""
    name_claim: str = "name"
    """The claim shown as the person's name (``preferred_username`` if it is missing)."""

    @field_validator("issuer")
    @classmethod
    def _https(cls, value: str) -> str:
        local = value.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
        if not value.startswith("https://") and not local:
            raise ValueError(f"issuer {value!r} is not an https:// URL (http only on localhost)")
        return value.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in value:
            raise ValueError("scopes must include openid")
        return value


class Web(Frozen):
    """``web:`` — the web workspace: who signs in and how sessions are kept."""

    oidc: Oidc | None = None
    """Sign-in through an OpenID Connect provider; without it only local accounts
    (``retention users add``) sign in."""
    local_accounts: StrictBool = True
    """Local accounts may sign in (an installation with an identity provider may turn them off)."""
    secure_cookies: StrictBool = True
    """Session cookies are sent over HTTPS only; false only for plain-http development on
    localhost."""
    session_minutes: int = Field(default=480, ge=5, le=7 * 24 * 60)
    """A session ends this long after sign-in."""
    session_key_env: str = Field(default="RETENTION_WEB_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The variable holding the key that signs session cookies (default: derived from
    RETENTION_SECRET, so every worker of an installation shares it)."""
    metrics: Literal["public", "signed-in", "off"] = "public"
    """``/metrics`` (Prometheus): answered without sign-in, as Prometheus scrapes (the
    figures hold no personal data); ``signed-in``: only to a signed-in person; ``off``: 404."""


Settings.model_rebuild()  # ``web: Web`` is defined after Settings


def _check_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value
