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
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from retention.catalog.model import Register
from retention.decide import approval
from retention.decide.approval import APPROVABLE
from retention.decide.identity import UNAUTHENTICATED, Identity
from retention.evidence import decisions
from retention.evidence.effects import Effect
from retention.i18n import Language, Messages
from retention.state.database import as_utc, plans, runs, start_of_utc_day
from retention.workspace import Workspace

#: The printed columns of every register/policy row, in order; ``total`` counts every action.
ACTIONS = ("deleted", "anonymised", "archived")
REASONS = ("retention", "erasure-request")
COLUMNS = (*ACTIONS, *REASONS, "total")
#: The message ids of the printed columns' headings (retention/i18n.py), in order.
HEADINGS = ("cert_deleted", "cert_anonymised", "cert_archived", "cert_retention",
            "cert_erasure_request", "cert_total")  # fmt: skip
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
    fields: set[str] = field(default_factory=set)
    """The columns the certificates name as anonymised (the evidence of what changed)."""
    packages: set[str] = field(default_factory=set)
    """The archive packages the certificates name."""
    fingerprints: set[str] = field(default_factory=set)
    """The fingerprints of the rules the certificates were made under."""
    plan_classes: set[tuple[str, str, str]] = field(default_factory=set)
    """The records-management plan classes the certificates cite: (TOS, version, class)."""
    total: int = 0

    @property
    def name(self) -> str:
        return f"{self.register}/{self.policy}"

    @property
    def legal_basis(self) -> str:
        """One basis, or each the policy had over the period (it may have been amended);
        empty when the policy stated none."""
        return "; ".join(sorted(self.legal_bases))

    def counts(self) -> dict[str, int]:
        return {
            **{a: self.actions[a] for a in ACTIONS},
            **{r: self.reasons[r] for r in REASONS},
            "total": self.total,
        }


def approver_label(given: Any) -> str:
    """An approver of a certificate's ``approvals`` as documents print it: the name, and
    "(unauthenticated)" where nobody signed in (a name typed at a command line)."""
    if not isinstance(given, dict):
        return str(given)
    name = str(given.get("name"))
    return name if given.get("authenticated") else f"{name} ({UNAUTHENTICATED})"


class Tally:
    """Counts certificates as they stream past; holds one entry per policy, run and approver."""

    def __init__(self) -> None:
        self.policies: dict[tuple[str, str], PolicyTally] = {}
        self.per_run: Counter[str] = Counter()
        self.plan_ids: set[str] = set()
        self.approvers: Counter[str] = Counter()
        self.approvals: dict[str, list[Any]] = {}
        """Plan id → the ``approvals`` its certificates name (the first seen)."""
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
        entry.fields.update(str(f) for f in cert.get("fields") or ())
        if cert.get("policy_sha256"):
            entry.fingerprints.add(str(cert["policy_sha256"]))
        cited = cert.get("records_plan")
        if isinstance(cited, dict) and cited.get("class_code"):
            entry.plan_classes.add((str(cited.get("tos") or ""), str(cited.get("version") or ""),
                                    str(cited["class_code"])))  # fmt: skip
        archive = cert.get("archive")
        if isinstance(archive, dict) and archive.get("package"):
            entry.packages.add(str(archive["package"]))
        entry.total += 1
        self.total += 1
        self.per_run[str(cert.get("run_id"))] += 1
        if cert.get("plan_id"):
            self.plan_ids.add(str(cert["plan_id"]))
        approvals = cert.get("approvals")
        if isinstance(approvals, list) and approvals:
            # Each approver by name, marked where the name was only typed (four eyes: two).
            for given in approvals:
                self.approvers[approver_label(given)] += 1
            self.approvals.setdefault(str(cert.get("plan_id")), approvals)
        elif cert.get("approved_by"):
            self.approvers[str(cert["approved_by"])] += 1

    def rows(self) -> list[PolicyTally]:
        return [self.policies[k] for k in sorted(self.policies)]

    def counts(self) -> Counts:
        return {row.name: row.counts() for row in self.rows()}


def _class_order(label: str) -> tuple[str, str]:
    """Classes sort by their code (``05.01`` before ``07.03``), then by plan."""
    code = label.rsplit("· ", 1)[-1]
    return code, label


@dataclass(frozen=True)
class RunEntry:
    """One run of the history, with the approved plan it executed (None: it had none)."""

    run_id: str
    plan_id: str
    """The run's own record of its decisions (kind ``run``): not an approval, never shown."""
    job: str | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    certificates: int
    executed_plan: str | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None


@dataclass(frozen=True)
class Approval:
    """An approved plan (``retention approve``) that a run of the history executed, or that
    an exported certificate names."""

    plan_id: str
    kind: str
    as_of: date
    job: str | None
    approved_by: str | None
    approved_at: datetime | None
    comment: str | None
    executed_run: str | None = None


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
    language: Language = "en"
    registers: Mapping[str, Register] = field(default_factory=dict)
    """The catalog's entries of the registers in :attr:`policies`: whose register it is."""
    effects: Mapping[tuple[str, str], Effect] = field(default_factory=dict)
    """What each policy's action changes, by (register, policy), as the catalog says now."""

    @property
    def t(self) -> Messages:
        return Messages(self.language)

    @property
    def period(self) -> str:
        t = self.t
        start = self.since.isoformat() if self.since else t("cert_ledger_start")
        end = (self.until or self.exported_at.astimezone(UTC).date()).isoformat()
        return t("cert_period_text", start=start, end=end)

    @property
    def scope(self) -> str:
        t = self.t
        return (
            t("cert_scope_register", register=self.register)
            if self.register
            else t("cert_scope_all")
        )

    @property
    def statement(self) -> str:
        t = self.t
        chain = (
            t("cert_statement_chain", first=self.first_seq, last=self.last_seq,
              hash=self.last_hash)
            if self.count
            else ""
        )  # fmt: skip
        return t("cert_statement", count=self.count, chain=chain, companion=self.companion,
                 sha256=self.companion_sha256, manifest=self.manifest, key_id=self.key_id,
                 file=self.file)  # fmt: skip

    @property
    def approver_list(self) -> str:
        """The approvers the certificates name, with how many each: "A (3), B (1)"."""
        return ", ".join(f"{name} ({self.t.number(n)})" for name, n in self.approvers)

    def by_plan_class(self) -> list[tuple[str | None, list[PolicyTally]]]:
        """The policies grouped by the records-management plan class their certificates
        cite, as a Finnish destruction list (hävitysluettelo) is: "TOS jamk-tos 2019.1 ·
        05.04", in class order; policies citing no class last (None)."""
        groups: dict[str | None, list[PolicyTally]] = {}
        for p in self.policies:
            label = "; ".join(
                f"TOS {tos} {version} · {code}".replace("  ", " ")
                for tos, version, code in sorted(p.plan_classes, key=lambda c: (c[2], c[0]))
            )
            groups.setdefault(label or None, []).append(p)
        return sorted(groups.items(), key=lambda g: (g[0] is None, _class_order(g[0] or "")))

    def by_register(self) -> list[tuple[str, Register | None, list[PolicyTally]]]:
        """The policies grouped by register, with the register's catalog entry (None: gone)."""
        groups: dict[str, list[PolicyTally]] = {}
        for p in self.policies:
            groups.setdefault(p.register, []).append(p)
        return [(r, self.registers.get(r), ps) for r, ps in groups.items()]

    def changed(self, p: PolicyTally) -> list[str]:
        """What ``p``'s action changed: from the catalog, and what the certificates name."""
        t = self.t
        effect = self.effects.get((p.register, p.policy))
        if effect is not None and effect.fingerprint in p.fingerprints:
            out = effect.sentences(t)
        else:  # the catalog's rule is not the one the certificates were made under
            out = [t("change_unknown")]
        if p.fields:
            out.append(t("cert_fields", columns=", ".join(sorted(p.fields))))
        if p.packages:
            out.append(t("cert_packages", packages=", ".join(sorted(p.packages))))
        return out


def history(
    ws: Workspace, tally: Tally, since: date | None, until: date | None, register: str | None
) -> tuple[list[RunEntry], list[Approval]]:
    """The runs of the period (and every run that wrote an exported certificate), each with
    the approved plan it executed, and those approved plans.

    A run of the period that disposed of nothing is listed too, failed ones included: an
    auditor sees every attempt, not only the successful ones. With ``register``, only runs
    whose summary names a policy of that register are. A run's own plan (kind ``run``, the
    record of its decisions) and side plans are not approvals: only a plan a person approved
    is listed as one, linked to its run by ``plans.executed_run``.
    """
    r, p = runs.c, plans.c
    found: dict[str, Any] = {}
    query = sa.select(runs)
    if since is not None:
        query = query.where(r.started_at >= start_of_utc_day(since))
    if until is not None:
        query = query.where(r.started_at < start_of_utc_day(until + timedelta(days=1)))
    columns = (p.plan_id, p.kind, p.as_of, p.job, p.approved_by, p.approved_at, p.comment,
               p.executed_run, p.made_by, p.changed_by)  # fmt: skip
    makers: dict[str, dict[str, Any]] = {}
    approved: dict[str, Approval] = {}
    with ws.state.connect() as conn:
        for row in conn.execute(query).mappings():
            if register is None or _touches(row["summary"], register):
                found[row["run_id"]] = row
        for chunk in _chunks(sorted(set(tally.per_run) - found.keys())):
            for row in conn.execute(sa.select(runs).where(r.run_id.in_(chunk))).mappings():
                found[row["run_id"]] = row
        wheres = [p.executed_run.in_(chunk) for chunk in _chunks(sorted(found))]
        wheres += [p.plan_id.in_(chunk) for chunk in _chunks(sorted(tally.plan_ids))]
        for where in wheres:
            plans_query = sa.select(*columns).where(where, p.kind == APPROVABLE,
                                                    p.approved_by.is_not(None))  # fmt: skip
            for plan in conn.execute(plans_query):
                makers[plan.plan_id] = {"made_by": plan.made_by, "changed_by": plan.changed_by}
                approved[plan.plan_id] = Approval(
                    plan.plan_id, plan.kind, plan.as_of, plan.job, plan.approved_by,
                    as_utc(plan.approved_at) if plan.approved_at else None, plan.comment,
                    plan.executed_run,
                )  # fmt: skip
        journal = decisions.for_plans(conn, sorted(approved))
    for plan_id, signed in journal.items():  # who approved, as the journal attributes it
        barred = approval.barred(makers[plan_id], signed)  # their approvals did not count
        given = [Identity.from_dict(e.actor) for e in signed if e.kind == "approval"]
        names = [by.label for by in given if not approval.is_barred(by, barred)]
        if names:
            approved[plan_id] = replace(approved[plan_id], approved_by=", ".join(names))
    executed = {a.executed_run: a for a in approved.values() if a.executed_run}
    entries = []
    for row in found.values():
        done = executed.get(row["run_id"])
        entries.append(RunEntry(
            row["run_id"], row["plan_id"], row["job"], as_utc(row["started_at"]),
            as_utc(row["finished_at"]) if row["finished_at"] else None, row["status"],
            tally.per_run[row["run_id"]], done.plan_id if done else None,
            done.approved_by if done else None, done.approved_at if done else None,
        ))  # fmt: skip
    entries.sort(key=lambda e: (e.started_at, e.run_id))
    return entries, sorted(approved.values(), key=lambda a: a.plan_id)


def render_html(doc: Document, path: Path) -> None:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("retention.evidence", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    t = doc.t
    env.filters["stamp"] = stamp
    env.filters["num"] = t.number
    template = env.get_template("destruction.html.j2")
    with path.open("w", encoding="utf-8") as out:
        for chunk in template.generate(doc=doc, t=t, columns=COLUMNS, headings=HEADINGS):
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
    """A printed count in either language: 1,234 or 1 234 (any space or comma groups)."""
    try:
        return int("".join(text.replace(",", "").split()))
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
