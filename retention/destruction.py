"""The certificate of destruction: what an export's certificates add up to, for a person to sign.

A ``.html`` or ``.pdf`` export summarises its certificates per register and policy (counts by
action and by reason, legal basis), with the run and approval history and the chain evidence
an auditor checks them by. The numbers come from a :class:`Tally` fed one certificate at a
time while they are streamed to the companion file, so a ledger of millions is summarised in
flat memory; the same tally, fed from the companion file, is how ``verify`` re-counts them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from retention.state import as_utc, plans, runs, start_of_utc_day
from retention.workspace import Workspace

#: The printed columns of every register/policy row, in order; ``total`` counts every action.
ACTIONS = ("deleted", "anonymised", "archived")
REASONS = ("retention", "erasure-request")
COLUMNS = (*ACTIONS, *REASONS, "total")
HEADINGS = ("Deleted", "Anonymised", "Archived", "Retention", "Erasure request", "Total")
_IN_CHUNK = 500  # bind parameters per IN (...) query: well inside every backend's limit

#: Counts as printed: ``{"register/policy": {column: n}}``.
Counts = dict[str, dict[str, int]]


@dataclass
class PolicyTally:
    register: str
    policy: str
    actions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    legal_bases: set[str] = field(default_factory=set)
    total: int = 0

    @property
    def name(self) -> str:
        return f"{self.register}/{self.policy}"

    @property
    def legal_basis(self) -> str:
        """One basis, or each the policy had over the period (it may have been amended)."""
        return "; ".join(sorted(self.legal_bases)) or "not stated in the policy"

    def counts(self) -> dict[str, int]:
        return {
            **{a: self.actions[a] for a in ACTIONS},
            **{r: self.reasons[r] for r in REASONS},
            "total": self.total,
        }


class Tally:
    """Counts certificates as they stream past; holds one entry per policy, run and approver."""

    def __init__(self) -> None:
        self.policies: dict[tuple[str, str], PolicyTally] = {}
        self.per_run: Counter[str] = Counter()
        self.plan_ids: set[str] = set()
        self.approvers: Counter[str] = Counter()
        self.total = 0

    def feed(self, cert: Mapping[str, Any]) -> None:
        register, policy = str(cert.get("register")), str(cert.get("policy"))
        entry = self.policies.get((register, policy))
        if entry is None:
            entry = self.policies[(register, policy)] = PolicyTally(register, policy)
        entry.actions[str(cert.get("action"))] += 1
        entry.reasons[str(cert.get("reason"))] += 1
        if cert.get("legal_basis"):
            entry.legal_bases.add(str(cert["legal_basis"]))
        entry.total += 1
        self.total += 1
        self.per_run[str(cert.get("run_id"))] += 1
        if cert.get("plan_id"):
            self.plan_ids.add(str(cert["plan_id"]))
        if cert.get("approved_by"):
            self.approvers[str(cert["approved_by"])] += 1

    def rows(self) -> list[PolicyTally]:
        return [self.policies[k] for k in sorted(self.policies)]

    def counts(self) -> Counts:
        return {row.name: row.counts() for row in self.rows()}


@dataclass(frozen=True)
class RunEntry:
    run_id: str
    plan_id: str
    job: str | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    certificates: int


@dataclass(frozen=True)
class Approval:
    plan_id: str
    kind: str
    as_of: date
    job: str | None
    approved_by: str | None
    approved_at: datetime | None
    comment: str | None


@dataclass(frozen=True)
class Document:
    """Everything a certificate of destruction shows; rendered as HTML or PDF alike."""

    file: str
    companion: str
    companion_sha256: str
    manifest: str
    exported_at: datetime
    since: date | None
    until: date | None
    register: str | None
    policies: list[PolicyTally]
    runs: list[RunEntry]
    approvals: list[Approval]
    approvers: list[tuple[str, int]]
    count: int
    first_seq: int | None
    last_seq: int | None
    first_hash: str | None
    last_hash: str | None
    checkpoints: list[dict[str, Any]]
    key_id: str

    @property
    def period(self) -> str:
        start = self.since.isoformat() if self.since else "the start of the ledger"
        end = (self.until or self.exported_at.astimezone(UTC).date()).isoformat()
        return f"{start} to {end} (day of execution, UTC)"

    @property
    def scope(self) -> str:
        return f"register {self.register}" if self.register else "every register"

    @property
    def statement(self) -> str:
        chain = (
            f" (ledger sequence {self.first_seq} to {self.last_seq}, last hash {self.last_hash})"
            if self.count
            else ""
        )
        return (
            f"These {self.count} certificates{chain} are listed in full in {self.companion}, "
            f"whose sha256 is {self.companion_sha256}. That file, this document and the "
            f"ledger checkpoints covering the certificates are signed in {self.manifest}, and "
            f"every signature verifies with the Ed25519 public key whose id is {self.key_id}. "
            f"Check with `retention verify {self.file} --public-key PUBLIC-KEY.pem`: it "
            "re-hashes every certificate, checks the chain and the signatures, and re-counts "
            "the numbers printed here."
        )


def history(
    ws: Workspace, tally: Tally, since: date | None, until: date | None, register: str | None
) -> tuple[list[RunEntry], list[Approval]]:
    """The runs of the period (and every run that wrote an exported certificate), and their plans.

    A run of the period that disposed of nothing is listed too, failed ones included: an
    auditor sees every attempt, not only the successful ones. With ``register``, only runs
    whose summary names a policy of that register are.
    """
    r = runs.c
    found: dict[str, Any] = {}
    query = sa.select(runs)
    if since is not None:
        query = query.where(r.started_at >= start_of_utc_day(since))
    if until is not None:
        query = query.where(r.started_at < start_of_utc_day(until + timedelta(days=1)))
    with ws.state.connect() as conn:
        for row in conn.execute(query).mappings():
            if register is None or _touches(row["summary"], register):
                found[row["run_id"]] = row
        for chunk in _chunks(sorted(set(tally.per_run) - found.keys())):
            for row in conn.execute(sa.select(runs).where(r.run_id.in_(chunk))).mappings():
                found[row["run_id"]] = row
        plan_ids = sorted(tally.plan_ids | {row["plan_id"] for row in found.values()})
        approvals = [
            Approval(
                row.plan_id, row.kind, row.as_of, row.job, row.approved_by,
                as_utc(row.approved_at) if row.approved_at else None, row.comment,
            )
            for chunk in _chunks(plan_ids)
            for row in conn.execute(
                sa.select(plans.c.plan_id, plans.c.kind, plans.c.as_of, plans.c.job,
                          plans.c.approved_by, plans.c.approved_at, plans.c.comment)
                .where(plans.c.plan_id.in_(chunk))
            )
        ]  # fmt: skip
    entries = [
        RunEntry(
            row["run_id"], row["plan_id"], row["job"], as_utc(row["started_at"]),
            as_utc(row["finished_at"]) if row["finished_at"] else None, row["status"],
            tally.per_run[row["run_id"]],
        )
        for row in found.values()
    ]  # fmt: skip
    entries.sort(key=lambda e: (e.started_at, e.run_id))
    approvals.sort(key=lambda a: a.plan_id)
    return entries, approvals


def render_html(doc: Document, path: Path) -> None:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("retention", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["stamp"] = stamp
    template = env.get_template("destruction.html.j2")
    with path.open("w", encoding="utf-8") as out:
        for chunk in template.generate(doc=doc, columns=COLUMNS, headings=HEADINGS):
            out.write(chunk)


def read_html_counts(path: Path) -> tuple[int | None, Counts]:
    """The total and the per-policy numbers a rendered HTML document prints, parsed back."""
    parser = _CountReader()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser.total, parser.counts


def compare(printed: tuple[int | None, Counts], total: int, counts: Counts) -> list[str]:
    """Where the printed numbers differ from the certificates' own (empty: they agree)."""
    shown_total, shown = printed
    faults = []
    if shown_total != total:
        faults.append(f"prints {shown_total} certificates, the certificates number {total}")
    for name in sorted(shown.keys() | counts.keys()):
        if name not in counts:
            faults.append(f"prints a row for {name}, which has no certificates")
        elif name not in shown:
            faults.append(f"prints no row for {name}, which has {counts[name]['total']}")
        elif shown[name] != counts[name]:
            faults.append(f"prints {_pairs(shown[name])} for {name}, the certificates give "
                          f"{_pairs(counts[name])}")  # fmt: skip
    return faults


def stamp(moment: datetime | date | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return moment.isoformat()


class _CountReader(HTMLParser):
    """Reads ``<tr data-policy>`` rows of ``<td data-count>`` cells and the ``data-total``."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counts = {}
        self.total: int | None = None
        self._policy: str | None = None
        self._column: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "tr" and named.get("data-policy"):
            self._policy = named["data-policy"]
            self.counts.setdefault(str(self._policy), {})
        if named.get("data-count"):
            self._column, self._text = named["data-count"], ""
        elif "data-total" in named:
            self._column, self._text = "*", ""

    def handle_data(self, data: str) -> None:
        if self._column is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if self._column is None or tag not in ("td", "span"):
            if tag == "tr":
                self._policy = None
            return
        value = _int(self._text)
        if self._column == "*":
            self.total = value
        elif self._policy is not None and value is not None:
            self.counts[self._policy][self._column] = value
        self._column = None


def _int(text: str) -> int | None:
    try:
        return int(text.strip().replace(",", "").replace("\u202f", ""))
    except ValueError:
        return None


def _pairs(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {counts.get(k)}" for k in COLUMNS)


def _touches(summary: str | None, register: str) -> bool:
    names: Iterable[str] = json.loads(summary) if summary else ()
    return any(name.split("/", 1)[0] == register for name in names)


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]
