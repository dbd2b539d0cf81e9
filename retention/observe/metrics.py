"""Prometheus metrics: counters from the audit events, gauges from the state database.

Two kinds of figure, kept apart on purpose:

* **Counters** (records decided / disposed / held / failed per register and policy,
  certificates, runs, lock waits, safety-valve trips, notifications) are counted from the
  events a run emits (:mod:`retention.events`). A long-running process keeps them in memory;
  a cron run carries them on in its textfile (the previous file's values are read back under
  a file lock before the new file replaces it), so they stay monotonic across runs.
* **Gauges of standing facts** (the last success of each job — the dead man's switch —,
  policies failing run after run, a safety valve standing tripped) are read from the state
  database at each scrape or write, so they survive restarts and are right whichever process
  ran the job. A failed run never writes a success there, so the gauge cannot move on one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from retention import events
from retention.decide.problems import TROUBLED
from retention.logs import get_logger
from retention.state.database import as_utc, plan_policies, plans, runs

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from retention.catalog.loading import Catalog

__all__ = [
    "Metrics", "StateCollector", "metrics_app", "process_metrics", "serve_metrics",
    "write_textfile",
]  # fmt: skip

_log = get_logger("retention.observe")

# ``*_created`` series double every counter for a start time nobody alerts on, and in a
# textfile rewritten by each cron run they would only ever say when that run began.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Plans and runs this far back are read for the per-policy gauges.
LOOKBACK = timedelta(days=31)


class Metrics:
    """The counters of one process (or, for a cron run, of its textfile), in their own
    registry so tests and several catalogs never share one."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records = Counter(
            "retention_records",
            "Records handled by enforcement runs, by outcome: decided (scanned), due, "
            "disposed, held, failed (due but left undisposed by a policy that did not complete)",
            ["register", "policy", "outcome"],
            registry=r,
        )
        self.runs = Counter(
            "retention_runs", "Finished runs of jobs and commands, by status "
            "(completed, partial, stopped, failed, locked)", ["job", "status"], registry=r,
        )  # fmt: skip
        self.duration = Gauge(
            "retention_run_duration_seconds",
            "Wall-clock seconds the latest run of each job took",
            ["job"],
            registry=r,
        )
        self.certificates = Counter(
            "retention_certificates_written", "Certificates written and signed by runs",
            registry=r,
        )  # fmt: skip
        self.lock_waits = Counter(
            "retention_lock_waits",
            "Runs that found a lock they needed held by another run (and did nothing)",
            ["lock"],
            registry=r,
        )
        self.valve_trips = Counter(
            "retention_safety_valve_trips",
            "Policies a safety valve stopped (max_per_run, max_due_share)",
            ["register", "policy"],
            registry=r,
        )
        self.notifications = Counter(
            "retention_notifications",
            "Notifications by channel, event and outcome (sent, failed after every retry)",
            ["channel", "event", "outcome"],
            registry=r,
        )
        self._lock = threading.Lock()

    # -- from the audit events ----------------------------------------------------------------

    def record(self, event: events.Event) -> None:
        """Count one audit event."""
        if isinstance(event, events.PolicyFinished):
            register, _, policy = event.policy.partition("/")
            undone = max(event.expire - event.disposed, 0)
            failed = undone if event.status in {*TROUBLED, "stopped", "interrupted"} else 0
            for outcome, value in (
                ("decided", event.scanned), ("due", event.expire), ("disposed", event.disposed),
                ("held", event.held), ("failed", failed),
            ):  # fmt: skip
                self.records.labels(register, policy, outcome).inc(value)
            if event.status == "stopped":
                self.valve_trips.labels(register, policy).inc()
        elif isinstance(event, events.CheckpointSigned):
            self.certificates.inc(event.count)

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        """Count the events this thread emits while inside (a scheduler runs several jobs
        in threads of one process; each run counts its own)."""
        me = threading.get_ident()

        def listener(event: events.Event) -> None:
            if threading.get_ident() == me:
                try:
                    self.record(event)
                except Exception as exc:  # noqa: BLE001 - counting must never stop a run
                    _log.warning("MetricsFailed", error=type(exc).__name__)

        stop = events.subscribe(listener)
        try:
            yield
        finally:
            stop()

    # -- carried across cron runs -------------------------------------------------------------

    def carry_on(self, text: str) -> None:
        """Start from an earlier textfile's values, so a counter rewritten by each cron run
        still only ever rises (a lost file is a counter reset, which Prometheus handles)."""
        ours: dict[str, Counter | Gauge] = {
            "retention_records": self.records, "retention_runs": self.runs,
            "retention_run_duration_seconds": self.duration,
            "retention_certificates_written": self.certificates,
            "retention_lock_waits": self.lock_waits,
            "retention_safety_valve_trips": self.valve_trips,
            "retention_notifications": self.notifications,
        }  # fmt: skip
        # A gauge this run has set already keeps this run's value.
        fresh = {(s.name, tuple(sorted(s.labels.items())))
                 for family in self.duration.collect() for s in family.samples}  # fmt: skip
        for family in text_string_to_metric_families(text):
            metric = ours.get(family.name)
            if metric is None:
                continue
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                child = metric.labels(**sample.labels) if sample.labels else metric
                if isinstance(child, Counter):
                    child.inc(max(sample.value, 0.0))
                elif (sample.name, tuple(sorted(sample.labels.items()))) not in fresh:
                    child.set(sample.value)


_process: Metrics | None = None
_process_lock = threading.Lock()


def process_metrics(*, serving: bool | None = None) -> Metrics | None:
    """The metrics of a process that serves ``/metrics`` (the scheduler), or None when this
    process serves none (a cron run: its counters go to the textfile)."""
    global _process
    with _process_lock:
        if serving is True and _process is None:
            _process = Metrics()
        elif serving is False:
            _process = None
        return _process


class StateCollector(Collector):
    """Gauges read from the state database at each collection: the standing facts."""

    def __init__(self, catalog: Callable[[], Catalog], engine: Callable[[], sa.Engine]) -> None:
        self._catalog, self._engine = catalog, engine

    def describe(self) -> Iterable[Metric]:
        return []  # collected per scrape: the label sets come from the database

    def collect(self) -> Iterable[Metric]:
        readable = GaugeMetricFamily(
            "retention_state_readable",
            "1 if the state database could be read for this scrape, else 0",
        )
        try:
            facts = standing_facts(self._catalog(), self._engine())
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even with the database away
            _log.warning("MetricsStateUnreadable", error=type(exc).__name__)
            readable.add_metric([], 0)
            yield readable
            return
        readable.add_metric([], 1)
        yield readable
        success = GaugeMetricFamily(
            "retention_last_success_timestamp_seconds",
            "When each job last completed without a failed or stopped policy (Unix time; "
            "0: never). The dead man's switch: alert when it is too old",
            labels=["job"],
        )
        for job, moment in sorted(facts.last_success.items()):
            success.add_metric([job], moment.timestamp() if moment else 0.0)
        yield success
        failing = GaugeMetricFamily(
            "retention_policy_consecutive_failures",
            "Runs and plans in a row, newest first, in which the policy failed",
            labels=["register", "policy"],
        )
        tripped = GaugeMetricFamily(
            "retention_policy_safety_valve_tripped",
            "1 if a safety valve stopped the policy in its latest run or plan, else 0",
            labels=["register", "policy"],
        )
        for (register, policy), (streak, stopped) in sorted(facts.policies.items()):
            failing.add_metric([register, policy], streak)
            tripped.add_metric([register, policy], 1 if stopped else 0)
        yield failing
        yield tripped


class StandingFacts:
    """What the state database says about jobs and policies now."""

    def __init__(self) -> None:
        self.last_success: dict[str, datetime | None] = {}
        self.policies: dict[tuple[str, str], tuple[int, bool]] = {}


def last_successes(catalog: Catalog, engine: sa.Engine) -> dict[str, datetime | None]:
    """Each catalog job's last success: for an ``enforce`` job the end of its newest run
    that completed (a partial, stopped or crashed run is none); for a ``dry-run`` or
    ``review`` job the making of its newest plan in which every policy was decided without
    failing."""
    found: dict[str, datetime | None] = dict.fromkeys(catalog.jobs)
    kinds = {"dry-run": "preview", "review": "dry-run"}
    with engine.connect() as conn:
        for job, moment in conn.execute(
            sa.select(runs.c.job, sa.func.max(runs.c.finished_at))
            .where(runs.c.status == "completed", runs.c.job.is_not(None))
            .group_by(runs.c.job)
        ):
            mode = catalog.jobs[job].mode if job in catalog.jobs else "enforce"
            if mode == "enforce" and moment is not None:
                found[job] = as_utc(moment)
        for job, spec in catalog.jobs.items():
            if spec.mode not in kinds:
                continue
            recent = conn.execute(
                sa.select(plans.c.plan_id, plans.c.created_at, plans.c.selection)
                .where(plans.c.job == job, plans.c.kind == kinds[spec.mode])
                .order_by(plans.c.created_at.desc())
                .limit(50)
            ).all()
            for plan_id, created, selection in recent:
                statuses = conn.scalars(
                    sa.select(plan_policies.c.status).where(plan_policies.c.plan_id == plan_id)
                ).all()
                chosen = json.loads(selection) if isinstance(selection, str) else selection
                whole = not isinstance(chosen, list) or len(statuses) >= len(chosen)
                if whole and not any(s in TROUBLED or s == "stopped" for s in statuses):
                    found[job] = as_utc(created)
                    break
    return found


def standing_facts(
    catalog: Catalog, engine: sa.Engine, now: datetime | None = None
) -> StandingFacts:
    """The last success per job and each policy's failing streak and valve, read afresh."""
    facts = StandingFacts()
    facts.last_success = last_successes(catalog, engine)
    since = (now or datetime.now(UTC)) - LOOKBACK
    p, pp = plans.c, plan_policies.c
    query = (
        sa.select(pp.register, pp.policy, pp.status)
        .join(plans, p.plan_id == pp.plan_id)
        .where(p.kind.in_(["run", "dry-run", "preview"]), p.created_at >= since)
        .order_by(p.created_at.desc(), p.plan_id.desc())
    )
    streaks: dict[tuple[str, str], tuple[int, bool]] = {}
    ended: set[tuple[str, str]] = set()
    with engine.connect() as conn:
        for register, policy, status in conn.execute(query):
            name = (register, policy)
            if status == "planned":
                continue  # a plan or run still under way
            streak, stopped = streaks.get(name, (0, status == "stopped"))
            if name not in ended:
                if status in TROUBLED:
                    streak += 1
                else:
                    ended.add(name)
            streaks[name] = (streak, stopped)
    for bound in catalog.policies:
        facts.policies[(bound.register.id, bound.policy.id)] = streaks.get(
            (bound.register.id, bound.policy.id), (0, False)
        )
    return facts


def registry_for(metrics: Metrics, collector: StateCollector) -> CollectorRegistry:
    """One registry exposing both the counters and the state gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(metrics.registry))
    registry.register(collector)
    return registry


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


def metrics_app(
    catalog: Callable[[], Catalog], engine: Callable[[], sa.Engine], metrics: Metrics | None = None
) -> WSGIApplication:
    """A WSGI app answering Prometheus scrapes (mount it at ``/metrics``): this process's
    counters (``metrics``, default: the process's) and the state database's gauges."""
    counters = metrics or process_metrics(serving=True)
    assert counters is not None
    app: WSGIApplication = make_wsgi_app(registry_for(counters, StateCollector(catalog, engine)))
    return app


def serve_metrics(app: WSGIApplication, address: str, port: int) -> Any:
    """Serve ``app`` on ``address:port`` in a daemon thread; returns the server (call its
    ``shutdown()``). Paths other than ``/metrics`` answer 404."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    def routed(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in ("/metrics", "/metrics/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: metrics are at /metrics\n"]
        return app(environ, start_response)

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every 15 seconds would drown the log

    class _Threaded(WSGIServer):
        daemon_threads = True

    server = make_server(address, port, routed, server_class=_Threaded, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def write_textfile(path: Path, metrics: Metrics, collector: StateCollector) -> None:
    """Rewrite the node_exporter textfile at ``path`` atomically: the previous file's
    counters are carried on (under a lock beside it, as two cron jobs may end at once), the
    new text goes to a temporary file in the same directory, is fsynced and renamed over it,
    so the collector never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:  # noqa: PTH123 - flock needs the fd
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists():
                with contextlib.suppress(ValueError, UnicodeDecodeError):  # damaged: start again
                    metrics.carry_on(path.read_text(encoding="utf-8"))
            text = generate_latest(registry_for(metrics, collector))
            fd, temporary = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
                Path(temporary).chmod(0o644)  # node_exporter runs as another user
                Path(temporary).replace(path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the rename itself survives a crash
            finally:
                os.close(directory)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
