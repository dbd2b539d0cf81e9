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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from retention.clock import CountFrom, Duration

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)]
Scalar = str | int | float | bool
Action = Literal["anonymise", "delete", "archive", "review"]
Strategy = Literal["erase", "redact", "year", "pseudonym"]

#: Actions that destroy or alter data in the source.
DESTROYING: frozenset[str] = frozenset({"anonymise", "delete"})


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Settings(Frozen):
    """``retention.yaml``: where the state, the archive and the signing key live."""

    state: str = "sqlite:///retention-state.db"
    archive: str = "archive"
    signing_key: str = "keys/signing.pem"
    timezone: str = "Europe/Helsinki"
    batch_size: int = Field(default=1000, ge=1, le=50_000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)


class SqlSource(Frozen):
    """``kind: sql`` — any database SQLAlchemy can reach."""

    id: Identifier
    kind: Literal["sql"]
    url: str
    schema_: str | None = Field(default=None, alias="schema")
    description: str | None = None


SourceSpec = SqlSource


class Register(Frozen):
    """The register (rekisteri) a privacy notice describes."""

    id: Identifier
    name: str
    controller: str
    source: str
    statutory: bool = False


class Retain(Frozen):
    """``retain:`` parsed: a duration, or permanent."""

    permanent: bool = False
    duration: Duration | None = None

    @classmethod
    def parse(cls, value: Any) -> Retain:
        if not isinstance(value, str):
            raise ValueError(f"expected a duration like P10Y or 'permanent', got {value!r}")
        if value.strip() == "permanent":
            return cls(permanent=True)
        return cls(duration=Duration.parse(value))

    def __str__(self) -> str:
        return "permanent" if self.permanent else str(self.duration)


class Policy(Frozen):
    """One retention rule over one table of one source."""

    id: Identifier
    description: str | None = None
    connector: Identifier
    table: str
    key: tuple[str, ...]
    subject: str | None = None
    secret: tuple[str, ...] = ()
    """Columns marking a person whose data is secret (turvakielto, "tiedot salaiset",
    luovutuskielto): such a record appears in reports and certificates by key and decision
    only."""
    match: dict[str, Scalar | tuple[Scalar, ...]] = Field(default_factory=dict)
    trigger: str | None = None
    retain: Retain | None = None
    until: date | None = None
    count_from: CountFrom = "event"
    action: Action
    then: Literal["keep", "delete", "anonymise"] | None = None
    anonymise: dict[str, Strategy] = Field(default_factory=dict)
    max_per_run: int | None = Field(default=None, ge=0)
    legal_basis: str | None = None
    enabled: bool = True

    @field_validator("key", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and not value:
            raise ValueError("the key needs at least one column")
        return value

    @field_validator("secret", mode="before")
    @classmethod
    def _secret_list(cls, value: Any) -> Any:
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

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        has_clock = self.trigger is not None or self.retain is not None
        if self.until is not None and has_clock:
            raise ValueError("until: give either trigger+retain or until, not both")
        if self.until is None and (self.trigger is None or self.retain is None):
            missing = "trigger" if self.trigger is None else "retain"
            raise ValueError(f"{missing}: is missing; give trigger+retain, or until")
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
        for column in self.anonymise:
            if column in self.key:
                raise ValueError(f"anonymise: cannot rewrite key column {column!r}")
        return self

    @property
    def destroys(self) -> bool:
        return self.action in DESTROYING or self.then in DESTROYING

    def fingerprint(self) -> str:
        """sha256 of the rule as loaded: certificates pin the exact rule they executed."""
        body = self.model_dump(mode="json", by_alias=True)
        body["retain"] = None if self.retain is None else str(self.retain)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def describe_rule(self) -> str:
        """The rule in a sentence, for reports and ``explain``."""
        if self.until is not None:
            return f"kept until {self.until.isoformat()}, then {self.action}"
        start = "the end of the year of" if self.count_from == "year_end" else ""
        return f"{self.retain} from {start} {self.trigger}, then {self.action}".replace("  ", " ")


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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a five-field cron expression (like '30 2 * * *')")
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from exc
        return value


def _check_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value
