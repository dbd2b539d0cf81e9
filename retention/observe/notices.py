"""What a notification says: one :class:`Notice` per event, in English or Finnish.

A notice carries counts, policy names, plan, run and hold ids, dates and links — never a
record's value, a hold's reason (free text a person typed) or who placed or approved
something. The same notice becomes an e-mail (``subject`` and ``text``) and a webhook's JSON
(``data``), so the two channels cannot say different things.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from retention.catalog.model import NotifyEvent
from retention.i18n import Language, Messages

__all__ = ["Notice", "PolicyLine", "digest", "hold_lapsing", "plan_expiring", "plan_waiting",
           "run_failed"]  # fmt: skip


@dataclass(frozen=True)
class Notice:
    event: NotifyEvent
    subject: str
    text: str
    data: dict[str, Any]
    """The webhook payload's ``data``: ids, counts, names, dates and links only."""
    registers: tuple[str, ...] = ()
    """Whose records managers receive it by e-mail (empty: every register's, ``"*"``)."""
    language: Language = "en"


@dataclass(frozen=True)
class PolicyLine:
    """One policy in a plan or run: its name and its counts."""

    name: str
    action: str = ""
    expire: int = 0
    held: int = 0
    status: str = ""
    disposed: int = 0

    @property
    def register(self) -> str:
        return self.name.partition("/")[0]


@dataclass(frozen=True)
class Links:
    workspace_url: str | None = None
    zone: str = "UTC"

    def plan(self, plan_id: str) -> str | None:
        if self.workspace_url is None:
            return None
        return f"{self.workspace_url.rstrip('/')}/plans/{plan_id}"

    def local(self, moment: datetime) -> str:
        return f"{moment.astimezone(ZoneInfo(self.zone)):%Y-%m-%d %H:%M} {self.zone}"


def _lines(*parts: str | None) -> str:
    return "\n".join(p for p in parts if p is not None)


def plan_waiting(
    language: Language,
    links: Links,
    *,
    plan_id: str,
    job: str | None,
    as_of: date,
    expires_at: datetime,
    policies: Sequence[PolicyLine],
    report: Path | None = None,
) -> Notice:
    t = Messages(language)
    expire = sum(p.expire for p in policies)
    link = links.plan(plan_id)
    text = _lines(
        t("n_plan_waiting_intro", job=job or "-", as_of=as_of.isoformat()),
        "",
        f"{t('plan_id')}: {plan_id}",
        *[_policy(t, p) for p in policies if p.expire or p.held],
        "",
        f"{t('n_expires_at')}: {links.local(expires_at)}",
        f"{t('n_review_at')}: {link}" if link else None,
        f"{t('n_report_at')}: {report}" if report is not None and not link else None,
        f"{t('n_approve_with')}: retention approve {plan_id} --by NAME",
        "",
        t("n_footer"),
    )
    return Notice(
        "plan-waiting",
        t("n_plan_waiting_subject", plan_id=plan_id, expire=t.number(expire)),
        text,
        {"plan_id": plan_id, "job": job, "as_of": as_of.isoformat(),
         "expires_at": expires_at.isoformat(), "expire": expire,
         "held": sum(p.held for p in policies), "link": link,
         "report": str(report) if report is not None else None,
         "policies": [{"policy": p.name, "action": p.action, "expire": p.expire, "held": p.held}
                      for p in policies]},
        _registers(policies),
        language,
    )  # fmt: skip


def plan_expiring(
    language: Language,
    links: Links,
    *,
    plan_id: str,
    job: str | None,
    expires_at: datetime,
    expire: int,
    policies: Sequence[str],
) -> Notice:
    t = Messages(language)
    link = links.plan(plan_id)
    text = _lines(
        t("n_plan_expiring_intro", expires_at=links.local(expires_at)),
        "",
        f"{t('plan_id')}: {plan_id} ({t('job')}: {job or '-'})",
        *policies,
        f"{t('n_review_at')}: {link}" if link else None,
        f"{t('n_approve_with')}: retention approve {plan_id} --by NAME",
        "",
        t("n_footer"),
    )
    day = expires_at.astimezone(ZoneInfo(links.zone)).date().isoformat()
    return Notice(
        "plan-expiring",
        t("n_plan_expiring_subject", plan_id=plan_id, expires_on=day),
        text,
        {"plan_id": plan_id, "job": job, "expires_at": expires_at.isoformat(), "expire": expire,
         "policies": list(policies), "link": link},
        _registers([PolicyLine(p) for p in policies]),
        language,
    )  # fmt: skip


def run_failed(
    language: Language,
    *,
    job: str | None,
    exit_code: int,
    status: str,
    run_ids: Sequence[str],
    policies: Sequence[PolicyLine],
    error: str | None,
) -> Notice:
    t = Messages(language)
    name = job or "-"
    key = "n_run_stopped_subject" if status == "stopped" else "n_run_failed_subject"
    troubled = [p for p in policies if p.status not in ("completed", "review", "skipped")]
    text = _lines(
        t("n_run_failed_intro", status=t.word("status", status)),
        "",
        f"{t('job')}: {name}",
        f"{t('n_run_ids')}: {', '.join(run_ids)}" if run_ids else None,
        f"{t('n_run_error')}: {error}" if error else None,
        *[
            t(
                "n_policy_status",
                policy=p.name,
                status=t.word("status", p.status),
                disposed=t.number(p.disposed),
            )
            for p in troubled
        ],
        "",
        t("n_footer"),
    )
    return Notice(
        "run-failed",
        t(key, job=name, exit_code=exit_code),
        text,
        {"job": job, "exit_code": exit_code, "status": status, "run_ids": list(run_ids),
         "error": error,
         "policies": [{"policy": p.name, "status": p.status, "disposed": p.disposed}
                      for p in troubled]},
        _registers(troubled),
        language,
    )  # fmt: skip


def hold_lapsing(
    language: Language,
    *,
    hold_id: str,
    register: str | None,
    policy: str | None,
    scope: str,
    until: date,
) -> Notice:
    """``scope``: ``register``, ``policy``, ``subject`` or ``record`` — how wide the hold is,
    never whose records it keeps."""
    t = Messages(language)
    where = f"{register}/{policy}" if policy else register or t("n_scope_all")
    extra = {"subject": t("n_scope_subject"), "record": t("n_scope_record")}.get(scope)
    text = _lines(
        t("n_hold_lapsing_intro", after=(until + timedelta(days=1)).isoformat()),
        "",
        f"{t('n_hold_scope')}: {where}" + (f" ({extra})" if extra else ""),
        "",
        t("n_footer"),
    )
    return Notice(
        "hold-lapsing",
        t("n_hold_lapsing_subject", hold_id=hold_id, until=until.isoformat()),
        text,
        {"hold_id": hold_id, "register": register, "policy": policy, "scope": scope,
         "until": until.isoformat()},
        (register,) if register else (),
        language,
    )  # fmt: skip


@dataclass(frozen=True)
class DigestFacts:
    day: date
    run_statuses: Mapping[str, int] = field(default_factory=dict)
    disposed: int = 0
    pending_plans: Sequence[str] = ()
    holds: int = 0
    lapsing: int = 0
    lapse_days: int = 14
    last_success: Mapping[str, datetime | None] = field(default_factory=dict)


def digest(language: Language, links: Links, facts: DigestFacts) -> Notice:
    t = Messages(language)
    runs = sum(facts.run_statuses.values())
    statuses = ", ".join(
        f"{t.word('status', s)} {n}" for s, n in sorted(Tally(facts.run_statuses).items())
    )
    text = _lines(
        t("n_digest_runs", runs=runs, statuses=statuses or "-"),
        t("n_digest_disposed", count=t.number(facts.disposed)),
        t("n_digest_pending", count=len(facts.pending_plans)),
        *[f"  {p}" + (f" {links.plan(p)}" if links.plan(p) else "") for p in facts.pending_plans],
        t("n_digest_holds", count=facts.holds, days=facts.lapse_days, lapsing=facts.lapsing),
        *[
            t("n_digest_last_success", job=job, at=links.local(at) if at else t("n_never"))
            for job, at in sorted(facts.last_success.items())
        ],
        "",
        t("n_footer"),
    )
    return Notice(
        "digest",
        t("n_digest_subject", day=facts.day.isoformat(), runs=runs,
          disposed=t.number(facts.disposed)),
        text,
        {"day": facts.day.isoformat(), "runs": dict(facts.run_statuses),
         "disposed": facts.disposed, "pending_plans": list(facts.pending_plans),
         "holds": facts.holds, "lapsing": facts.lapsing,
         "last_success": {job: at.isoformat() if at else None
                          for job, at in facts.last_success.items()}},
        (),
        language,
    )  # fmt: skip


def _policy(t: Messages, p: PolicyLine) -> str:
    return t("n_policy_line", policy=p.name, expire=t.number(p.expire), held=t.number(p.held),
             action=t.word("action", p.action))  # fmt: skip


def _registers(policies: Sequence[PolicyLine]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.register for p in policies))
