"""``retention scheduler``: fire the jobs of ``jobs/`` on their cron schedules (APScheduler 3).

Each job of the catalog becomes one APScheduler job in the ``scheduler_jobs`` table of the
state database (so fire times survive a restart and a run missed while the scheduler was down
is made up once, within the misfire grace time), with ``coalesce`` and one instance at a time.
A firing calls :func:`run_job`, which is exactly what ``retention run --job J`` (``enforce``,
``review``) or ``retention plan --job J`` (``dry-run``) does, so system cron, a Kubernetes
CronJob and this scheduler make the same run.

Signals: SIGHUP reloads the catalog (an invalid catalog is logged and the schedule in force
kept); SIGTERM and SIGINT ask a running enforcement to stop after its current batch
(:mod:`retention.stopping`), wait for it, and exit 0.

Cron expressions are standard five-field crontab lines, translated for APScheduler 3, which
numbers weekdays from Monday = 0 where cron has Sunday = 0 (and 7); see :func:`cron_trigger`.
Only one scheduler serves a state database at a time: it holds the ``scheduler`` lock there,
and a second one waits for it (a standby), because APScheduler 3 job stores cannot be shared.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger

from retention import stopping
from retention.catalog.cron import cron_trigger
from retention.catalog.loading import Catalog, load_catalog
from retention.decide.problems import TROUBLED
from retention.enforce.locks import RunLock
from retention.errors import (
    EXIT_LOCKED,
    EXIT_PARTIAL,
    EXIT_SUCCESS,
    EXIT_UNEXPECTED,
    CatalogError,
    Problem,
    RetentionError,
    RunLocked,
)
from retention.logs import get_logger
from retention.state.database import locks, open_state

if TYPE_CHECKING:
    from retention.observe.observation import Observation

__all__ = ["JOB_TABLE", "SCHEDULER_LOCK", "Scheduler", "cron_trigger", "run_job"]

#: The APScheduler job store table in the state database.
JOB_TABLE = "scheduler_jobs"
#: The lock a serving scheduler holds in the state database.
SCHEDULER_LOCK = "scheduler"
#: The in-memory job store of the daily notices (not a catalog job, never stored).
NOTICES_STORE = "notices"
NOTICES_JOB = ":notices"  # no catalog job id has a colon
#: Default: a firing missed by up to an hour (a restart, a busy pool) still runs, once.
MISFIRE_GRACE_TIME = 3600

_log = get_logger("retention.scheduler")


# --------------------------------------------------------------------------------------------
# one firing


def run_job(catalog_dir: str, job_id: str) -> int:
    """Make one run of a job, as its mode says; return the exit code, never raise.

    The run is observed (:mod:`retention.observe`): counted in the metrics, and a failed run
    or a plan waiting for review is told to whom ``notify:`` names.

    ``enforce`` is ``retention run --job``; ``dry-run`` is ``retention plan --job`` with its
    reports (the job's ``report`` formats) in the settings' ``reports`` folder as
    ``<job>-<YYYYMMDDTHHMMSS>.<format>`` (UTC); ``review`` first
    executes the job's approved plans that may run now, then makes the same plan as
    ``dry-run`` and logs it as awaiting approval. The catalog is read afresh for every run,
    and ``RETENTION_SECRET`` comes from the environment.
    """
    from retention.observe.observation import Observation

    if stopping.stop_requested():
        _log.info("JobSkipped", job=job_id, reason="the scheduler is stopping")
        return EXIT_SUCCESS
    with Observation(catalog_dir, job_id) as obs:
        code = _fire(catalog_dir, job_id, obs)
        obs.finished(code)
    return code


def _fire(catalog_dir: str, job_id: str, obs: Observation) -> int:
    from retention import api
    from retention.workspace import Workspace

    log = _log.bind(job=job_id)
    with structlog.contextvars.bound_contextvars(job=job_id):
        try:
            with Workspace.open(catalog_dir) as ws:
                mode = ws.catalog.job(job_id).mode
                log = log.bind(mode=mode)
                log.info("JobStarted")
                if mode == "enforce":
                    outcome = api.run(ws, job=job_id)
                    log.info(
                        "JobFinished",
                        run_id=outcome.run_id,
                        status=outcome.status,
                        disposed=outcome.disposed,
                        exit_code=outcome.exit_code,
                    )
                    return outcome.exit_code
                executed: dict[str, Any] = {}
                first, *more = reports = _report_paths(ws.catalog, job_id)
                if mode == "review":
                    review = api.review(ws, job_id, report=first, more_reports=more)
                    result, written = review.plan, review.report
                    executed = {"executed": {p: r.run_id for p, r in review.runs.items()},
                                "disposed": sum(r.disposed for r in review.runs.values()),
                                "cooling_off": [p.plan_id for p in review.waiting]}  # fmt: skip
                    code = review.exit_code  # the worst of its runs and its new plan
                else:
                    result, written = api.plan(
                        ws, job=job_id, report=first, more_reports=more, for_approval=False
                    )
                failed = [p.name for p in result.policies if p.status in TROUBLED]
                if mode != "review":
                    code = EXIT_PARTIAL if failed else EXIT_SUCCESS
                facts: dict[str, Any] = {
                    "plan_id": result.plan_id,
                    "report": str(written),
                    "reports": [str(p) for p in reports],
                    "expire": sum(p.counts.expire for p in result.policies),
                    "held": sum(p.counts.held for p in result.policies),
                    "failed": failed,
                    "exit_code": code,
                    **executed,
                }
                if mode == "review":
                    log.info("PlanAwaitingApproval", **facts)
                    obs.plan_waiting(result, written)
                else:
                    log.info("JobFinished", **facts)
                return code
        except RunLocked as exc:
            obs.note_error(exc)
            log.warning(
                "JobLocked",
                lock=exc.name,
                owner=exc.owner,
                message=str(exc),
                exit_code=exc.exit_code,
            )
            return exc.exit_code
        except CatalogError as exc:
            obs.note_error(exc)
            log.error("JobFailed", problems=[str(p) for p in exc.problems], exit_code=exc.exit_code)
            return exc.exit_code
        except RetentionError as exc:
            obs.note_error(exc)
            log.error(
                "JobFailed", error=type(exc).__name__, message=str(exc), exit_code=exc.exit_code
            )
            return exc.exit_code
        except Exception as exc:  # noqa: BLE001 - a scheduled run must never kill the scheduler
            obs.note_error(exc)
            log.error(
                "JobFailed",
                error=type(exc).__name__,
                message=_safe_message(exc),
                exit_code=EXIT_UNEXPECTED,
            )
            return EXIT_UNEXPECTED


def _report_paths(catalog: Catalog, job_id: str) -> list[Path]:
    """One report file per format the job asks for, all named by the same firing."""
    folder = catalog.resolve(catalog.settings.reports)
    formats = catalog.job(job_id).report
    stamp, n = f"{job_id}-{datetime.now(UTC):%Y%m%dT%H%M%S}", 1
    name = stamp
    while any((folder / f"{name}.{fmt}").exists() for fmt in formats):
        n += 1  # two runs in one second: keep both reports
        name = f"{stamp}-{n}"
    return [folder / f"{name}.{fmt}" for fmt in formats]


def _safe_message(exc: Exception) -> str:
    """An unexpected error's text, only with ``RETENTION_DEBUG=1``: a driver's message (or a
    file path) can quote a record's values, and logs never carry those."""
    if os.environ.get("RETENTION_DEBUG") == "1":
        return str(exc)
    return "details not logged (set RETENTION_DEBUG=1 to see them)"


# --------------------------------------------------------------------------------------------
# the scheduler


class Scheduler:
    """The catalog's jobs on an APScheduler 3 ``BackgroundScheduler``; :meth:`serve` runs it
    in the foreground until SIGTERM/SIGINT, reloading on SIGHUP."""

    def __init__(
        self,
        catalog_dir: Path | str,
        *,
        misfire_grace_time: int = MISFIRE_GRACE_TIME,
        heartbeat: float = 60.0,
        lock_retry: float = 30.0,
        metrics_port: int | None = None,
    ) -> None:
        self.catalog_dir = Path(catalog_dir).resolve()
        self.metrics_port = metrics_port
        """Serve ``/metrics`` here (default: ``metrics_port`` in retention.yaml)."""
        self._metrics_server: Any = None
        self.misfire_grace_time = misfire_grace_time
        self.heartbeat = heartbeat
        self.lock_retry = lock_retry
        self.catalog: Catalog | None = None
        self._aps: Any = None
        self._engine: sa.Engine | None = None
        self._lock: RunLock | None = None
        self._forward: logging.Handler | None = None
        self._triggers: dict[str, CronTrigger] = {}
        self._saved_logging: tuple[int, bool] = (logging.NOTSET, True)
        self._wake = threading.Event()
        self._reload_wanted = False
        self._stop_wanted = False

    # -- life cycle --------------------------------------------------------------------------

    def start(self, *, paused: bool = False) -> None:
        """Load the catalog, take the scheduler lock, bring the job store in line with the
        catalog and start firing (unless ``paused``).

        CatalogError: the catalog is invalid or a schedule cannot be translated.
        RunLocked: another scheduler serves this state database.
        """
        if self._aps is not None:
            raise RuntimeError("the scheduler is already started")
        catalog = load_catalog(self.catalog_dir)
        triggers = _triggers(catalog)
        _ready_to_run(catalog)
        stopping.clear()
        engine = open_state(catalog.state_url)
        lease = timedelta(seconds=catalog.settings.lock_lease_seconds)
        lock = RunLock(engine, [SCHEDULER_LOCK], lease)
        try:
            lock.acquire()
        except BaseException:
            engine.dispose()
            raise
        aps = _BackgroundScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(
                    url=catalog.state_url,
                    tablename=JOB_TABLE,
                    engine_options={"pool_pre_ping": True},
                )
            },
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.misfire_grace_time,
            },
            timezone=catalog.settings.timezone,
        )
        aps.add_jobstore("memory", alias=NOTICES_STORE)
        aps.add_listener(self._on_executed, EVENT_JOB_EXECUTED)
        self._aps, self._engine, self._lock = aps, engine, lock
        try:
            self._forward_apscheduler_logs()
            aps.start(paused=True)
            self._apply(catalog, triggers)
            self._observe(catalog)
        except BaseException:
            self._shutdown(wait=False)
            raise
        self.catalog = catalog
        if not paused:
            aps.resume()
        _log.info(
            "SchedulerStarted",
            catalog=str(catalog.root),
            jobs=len(triggers),
            misfire_grace_time=self.misfire_grace_time,
            paused=paused,
        )
        self._log_next_runs()

    def reload(self) -> bool:
        """Re-read the catalog and bring the schedule in line; on any problem keep the old
        schedule and return False."""
        if self._aps is None or self.catalog is None:
            raise RuntimeError("the scheduler is not started")
        try:
            catalog = load_catalog(self.catalog_dir)
            triggers = _triggers(catalog)
        except CatalogError as exc:
            _log.error(
                "ReloadRejected",
                problems=[str(p) for p in exc.problems],
                kept=sorted(self.catalog.jobs),
            )
            return False
        except Exception as exc:  # noqa: BLE001 - a failed reload must not end the scheduler
            _log.error("ReloadFailed", error=type(exc).__name__, message=_safe_message(exc))
            return False
        if catalog.state_url != self.catalog.state_url:
            _log.warning(
                "StateMoved",
                message="the state database changed in retention.yaml; "
                "the schedule stays in the old one until the scheduler is restarted",
            )
        try:
            self._apply(catalog, triggers)
        except Exception as exc:  # noqa: BLE001 - a failed reload must not end the scheduler
            _log.error("ReloadFailed", error=type(exc).__name__, message=_safe_message(exc))
            return False
        self.catalog = catalog
        self._schedule_notices(catalog)
        _log.info("SchedulerReloaded", jobs=len(triggers))
        self._log_next_runs()
        return True

    def stop(self) -> None:
        """Ask a running enforcement to stop after its current batch, wait for it, shut down."""
        stopping.request_stop()
        if self._aps is None:
            return
        _log.info("SchedulerStopping", message="waiting for running jobs to finish their batch")
        self._shutdown(wait=True)
        _log.info("SchedulerStopped")

    def _shutdown(self, *, wait: bool) -> None:
        aps, lock, engine = self._aps, self._lock, self._engine
        if self._metrics_server is not None:
            from retention.observe.metrics import process_metrics

            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
            process_metrics(serving=False)
        try:
            if aps is not None and aps.running:
                aps.shutdown(wait=wait)
        finally:
            self._aps = self._lock = self._engine = None
            self._restore_apscheduler_logs()
            if lock is not None:
                try:
                    lock.release()
                except sa.exc.SQLAlchemyError as exc:
                    _log.warning("SchedulerLockNotReleased", message=_safe_message(exc))
            if engine is not None:
                engine.dispose()

    def next_fire_times(self) -> dict[str, datetime | None]:
        """Each scheduled job's next fire time, from the job store."""
        if self._aps is None:
            return {}
        return {job.id: job.next_run_time for job in self._aps.get_jobs(jobstore="default")}

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where ``/metrics`` is served (host, port), or None."""
        server = self._metrics_server
        return None if server is None else (server.server_address[0], server.server_port)

    def _observe(self, catalog: Catalog) -> None:
        """Serve ``/metrics`` when a port is given, and send the day's notices daily."""
        from retention.observe.metrics import metrics_app, process_metrics, serve_metrics

        port = self.metrics_port if self.metrics_port is not None else catalog.settings.metrics_port
        if port is not None:
            counters = process_metrics(serving=True)
            app = metrics_app(lambda: self.catalog or catalog, self._state, counters)
            self._metrics_server = serve_metrics(app, catalog.settings.metrics_address, port)
            _log.info("MetricsServed", address=catalog.settings.metrics_address,
                      port=self._metrics_server.server_port, path="/metrics")  # fmt: skip
        self._schedule_notices(catalog)

    def _schedule_notices(self, catalog: Catalog) -> None:
        from retention.observe import due

        notify = catalog.settings.notify
        if notify is None:
            if self._aps.get_job(NOTICES_JOB, jobstore=NOTICES_STORE) is not None:
                self._aps.remove_job(NOTICES_JOB, jobstore=NOTICES_STORE)
        else:
            hour, minute = notify.daily_at.split(":")
            self._aps.add_job(
                due.scheduled_notices, trigger=CronTrigger(
                    hour=int(hour), minute=int(minute), timezone=catalog.settings.timezone),
                args=(str(catalog.root),), id=NOTICES_JOB, name="notices",
                jobstore=NOTICES_STORE, replace_existing=True, coalesce=True,
                misfire_grace_time=self.misfire_grace_time,
            )  # fmt: skip

    def _state(self) -> sa.Engine:
        if self._engine is None:
            raise RuntimeError("the scheduler is stopped")
        return self._engine

    # -- foreground ---------------------------------------------------------------------------

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0), reloading on SIGHUP; wait while another
        scheduler holds the state database. CatalogError if the catalog is invalid at start."""
        handled = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            while not self._stop_wanted:
                try:
                    self.start()
                    break
                except RunLocked as exc:
                    _log.warning(
                        "SchedulerWaiting", lock=exc.name, owner=exc.owner, retry_in=self.lock_retry
                    )
                    self._wait(self.lock_retry)
            if self._aps is None:
                return EXIT_SUCCESS  # stopped while waiting for the lock
            code = EXIT_SUCCESS
            try:
                while True:
                    self._wait(self.heartbeat)
                    if self._stop_wanted:
                        break
                    if self._reload_wanted:
                        self._reload_wanted = False
                        _log.info("ReloadRequested", signal="SIGHUP")
                        self.reload()
                    if not self._still_holding_lock():
                        code = EXIT_LOCKED
                        break
            finally:
                self.stop()
            return code
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only flags here: the work (and the logging) happens in serve()'s loop.
        if signum == signal.SIGHUP:
            self._reload_wanted = True
        else:
            self._stop_wanted = True
            stopping.request_stop()  # a running batch sees it at once
        self._wake.set()

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _still_holding_lock(self) -> bool:
        """Refresh the lock's heartbeat; False if another scheduler has taken it over."""
        if self._lock is None or self._engine is None:
            return False
        try:
            self._lock.refresh()
            with self._engine.connect() as conn:
                held = conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(locks)
                    .where(locks.c.name == SCHEDULER_LOCK, locks.c.owner == self._lock.owner)
                )
        except RunLocked:  # its lease ran out and another scheduler took the lock
            held = 0
        except sa.exc.SQLAlchemyError as exc:
            _log.warning("SchedulerHeartbeatFailed", message=_safe_message(exc))
            return True  # the database is away; the lease outlasts a short outage
        if not held:
            _log.error(
                "SchedulerLockLost",
                message="another scheduler took over the state "
                "database; stopping so the jobs do not fire twice",
            )
        return bool(held)

    # -- job store ----------------------------------------------------------------------------

    def _apply(self, catalog: Catalog, triggers: Mapping[str, CronTrigger]) -> None:
        """One stored job per catalog job; a job whose trigger is unchanged keeps its next
        fire time (so a firing missed while down is still made up); the rest are removed."""
        aps = self._aps
        with aps.processing_held():  # no job fires between reading the store and writing it
            stored = {job.id: job for job in aps.get_jobs(jobstore="default")}
            self._triggers = dict(triggers)
            for job_id, trigger in triggers.items():
                args = (str(catalog.root), job_id)
                old = stored.get(job_id)
                same = (
                    old is not None
                    and old.next_run_time is not None
                    and repr(old.trigger) == repr(trigger)
                    and tuple(old.args) == args
                )
                extra = {"next_run_time": old.next_run_time} if same and old is not None else {}
                aps.add_job(
                    run_job,
                    trigger=trigger,
                    args=args,
                    id=job_id,
                    name=job_id,
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=self.misfire_grace_time,
                    **extra,
                )
            for job_id in stored.keys() - triggers.keys():
                aps.remove_job(job_id)
                _log.info("JobUnscheduled", job=job_id)

    def _log_next_runs(self) -> None:
        assert self.catalog is not None
        for job_id, moment in sorted(self.next_fire_times().items()):
            job = self.catalog.jobs.get(job_id)
            _log.info(
                "JobScheduled",
                job=job_id,
                mode=job.mode if job else None,
                schedule=job.schedule if job else None,
                timezone=(job.timezone or self.catalog.settings.timezone) if job else None,
                next_run=moment.isoformat() if moment else None,
            )

    def _on_executed(self, event: Any) -> None:
        # Runs in the executor thread; asking the job store here could deadlock with a
        # shutdown waiting for this very thread, so the next time comes from the trigger.
        trigger = self._triggers.get(event.job_id)
        moment = (
            trigger.get_next_fire_time(event.scheduled_run_time, datetime.now(UTC))
            if trigger is not None
            else None
        )
        _log.info(
            "JobNextRun",
            job=event.job_id,
            exit_code=event.retval,
            next_run=moment.isoformat() if moment else None,
        )

    def _forward_apscheduler_logs(self) -> None:
        """APScheduler logs through ``logging`` (a missed firing, a skipped overlapping one);
        send its warnings through structlog, so standard error stays one JSON object a line."""
        logger = logging.getLogger("apscheduler")
        self._forward = _ToStructlog()
        self._saved_logging = (logger.level, logger.propagate)
        logger.addHandler(self._forward)
        logger.setLevel(logging.WARNING)
        logger.propagate = False

    def _restore_apscheduler_logs(self) -> None:
        if self._forward is not None:
            logger = logging.getLogger("apscheduler")
            logger.removeHandler(self._forward)
            logger.setLevel(self._saved_logging[0])
            logger.propagate = self._saved_logging[1]
            self._forward = None


class _BackgroundScheduler(BackgroundScheduler):  # type: ignore[misc]
    """Looks for due jobs only while running.

    APScheduler 3 makes one more pass over the job store as it shuts down (and would on a
    paused scheduler being shut down): a job due then is handed to the executor already shut
    down, fails, and has its next fire time moved on, so it is lost instead of being made up
    after the restart. Skipping that pass leaves it due in the store.
    """

    def processing_held(self) -> AbstractContextManager[Any]:
        """Hold off the search for due jobs (the store lock; re-entrant for this thread)."""
        lock: AbstractContextManager[Any] = self._jobstores_lock
        return lock

    def _process_jobs(self) -> float | None:
        with self._jobstores_lock:  # shutdown() sets the state, then takes this lock
            if self.state != STATE_RUNNING:
                return None
            wait: float | None = super()._process_jobs()
            return wait


class _ToStructlog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _log.log(record.levelno, "APScheduler", logger=record.name, message=record.getMessage())


def _ready_to_run(catalog: Catalog) -> None:
    """Refuse to start (exit 2) without what every run will need, rather than log the same
    failure at each firing: the secret, and for an enforce job the signing key."""
    from retention.workspace import Workspace

    with Workspace(catalog) as ws:
        _ = ws.secret  # and the state database's record of it
        if any(job.mode == "enforce" for job in catalog.jobs.values()):
            ws.signing_key()


def _triggers(catalog: Catalog) -> dict[str, CronTrigger]:
    """A trigger per job, or one CatalogError naming every schedule that cannot be run."""
    triggers: dict[str, CronTrigger] = {}
    problems: list[Problem] = []
    for job in catalog.jobs.values():
        try:
            triggers[job.id] = cron_trigger(job.schedule, job.timezone or catalog.settings.timezone)
        except ValueError as exc:
            where = catalog.files.get("job:" + job.id, "jobs/")
            problems.append(Problem(where, str(exc), key="schedule"))
    if problems:
        raise CatalogError(problems)
    return triggers
