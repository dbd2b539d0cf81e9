"""The notices a day brings: plans about to expire unapproved, holds about to lapse, the
digest. ``retention notify --due`` (cron) and the scheduler (at ``notify.daily_at``) send them.

Each is announced on one day — the day ``plan_expiry_warning`` before a pending plan
expires, the day ``hold_lapse_warning`` before a hold's ``until`` — so sending once a day
tells of each once, with nothing stored. Sending twice on a day repeats that day's notices.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from retention.catalog.model import NOTIFY_EVENTS
from retention.decide import approval
from retention.logs import get_logger
from retention.observe import notices
from retention.observe.metrics import last_successes
from retention.observe.notices import Notice
from retention.observe.notify import deliver
from retention.observe.observation import Observation
from retention.state.database import certificates, runs
from retention.workspace import Workspace

_log = get_logger("retention.observe")

__all__ = ["due_notices", "scheduled_notices", "send_due", "send_test"]


def due_notices(
    ws: Workspace, obs: Observation, today: date, *, digest: bool = True
) -> list[Notice]:
    """Everything to tell on ``today`` (the catalog's calendar day)."""
    notify = ws.catalog.settings.notify
    if notify is None:
        return []
    zone = ZoneInfo(ws.catalog.settings.timezone)
    language, links = obs.language, obs.links()
    found: list[Notice] = []
    pending = approval.list_plans(ws, state="pending")
    for plan in pending:
        announce = plan.expires_at.astimezone(zone).date() - notify.plan_expiry_warning.delta
        if announce == today:
            found.append(
                notices.plan_expiring(
                    language, links, plan_id=plan.plan_id, job=plan.job,
                    expires_at=plan.expires_at, expire=plan.expire, policies=plan.policies,
                )
            )  # fmt: skip
    holds = ws.holds.active(today)
    lapsing = 0
    for hold in holds:
        if hold.until is None:
            continue
        if hold.until - notify.hold_lapse_warning.delta <= today:
            lapsing += 1
        if hold.until - notify.hold_lapse_warning.delta == today:
            scope = _scope(hold.record_key, hold.subject_ref, hold.policy, hold.register)
            found.append(
                notices.hold_lapsing(
                    language, hold_id=hold.hold_id, register=hold.register,
                    policy=hold.policy, scope=scope, until=hold.until,
                )
            )  # fmt: skip
    if digest and notify.digest:
        found.append(_digest(ws, obs, today, [p.plan_id for p in pending], len(holds), lapsing))
    return found


def _digest(
    ws: Workspace, obs: Observation, today: date, pending: list[str], holds: int, lapsing: int
) -> Notice:
    notify = ws.catalog.settings.notify
    assert notify is not None
    since = datetime.now(UTC) - timedelta(days=1)
    with ws.state.connect() as conn:
        statuses = Tally(
            conn.scalars(sa.select(runs.c.status).where(runs.c.started_at >= since)).all()
        )
        disposed = conn.scalar(
            sa.select(sa.func.count())
            .select_from(certificates)
            .where(certificates.c.executed_at >= since)
        )
    window = today + notify.hold_lapse_warning.delta
    facts = notices.DigestFacts(
        day=today, run_statuses=dict(statuses), disposed=int(disposed or 0),
        pending_plans=pending, holds=holds, lapsing=lapsing, lapse_days=(window - today).days,
        last_success=last_successes(ws.catalog, ws.state),
    )  # fmt: skip
    return notices.digest(obs.language, obs.links(), facts)


def send_test(catalog_dir: Path | str, environ: Mapping[str, str] | None = None) -> dict[str, bool]:
    """Send today's digest on every channel, whatever events each takes; channel → sent."""
    with (
        Observation(catalog_dir, environ=environ, run=False) as obs,
        Workspace.open(catalog_dir, environ) as ws,
    ):
        notify = ws.catalog.settings.notify
        if notify is None:
            return {}
        notice = _digest(ws, obs, ws.catalog.today()[0], [], 0, 0)
        every = {"events": NOTIFY_EVENTS}
        notify = notify.model_copy(update={
            "email": notify.email.model_copy(update=every) if notify.email else None,
            "webhooks": tuple(h.model_copy(update=every) for h in notify.webhooks),
        })  # fmt: skip
        return deliver(notify, notice, obs.environ, obs.metrics)


def send_due(
    catalog_dir: Path | str,
    environ: Mapping[str, str] | None = None,
    *,
    today: date | None = None,
    digest: bool = True,
) -> list[Notice]:
    """Send the day's notices (never raising for a notifier that fails); returns them."""
    with Observation(catalog_dir, environ=environ, run=False) as obs:
        with Workspace.open(catalog_dir, environ) as ws:
            day = today or ws.catalog.today()[0]
            found = due_notices(ws, obs, day, digest=digest)
        obs.tell(found)
    return found


def _scope(record: object, subject: object, policy: object, register: object) -> str:
    """How wide a hold is, never whose records it keeps."""
    if record:
        return "record"
    if subject:
        return "subject"
    return "policy" if policy else "register" if register else "all"


def scheduled_notices(catalog_dir: str) -> int:
    """The scheduler's daily firing of :func:`send_due`: logs, never raises."""
    try:
        sent = send_due(catalog_dir)
    except Exception as exc:  # noqa: BLE001 - the scheduler goes on whatever happens here
        _log.error("NoticesFailed", error=type(exc).__name__)
        return 1
    _log.info("NoticesSent", notices=[n.event for n in sent])
    return 0
