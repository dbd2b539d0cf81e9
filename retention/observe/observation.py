"""One job firing or command, observed: its metrics counted and written, its failure told.

``with Observation(catalog_dir, job) as obs:`` around a run counts the audit events the run
emits in this thread; on the way out it counts the run by status, sets its duration, tells
of a failed or stopped run and of a plan waiting for review, and (in a process that serves
no ``/metrics``) rewrites the ``metrics_textfile``. Whatever goes wrong in here is logged as
``ObservationFailed``; the run's exit code and exception pass through untouched.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from retention import events
from retention.catalog.loading import Catalog, load_catalog, read_catalog
from retention.errors import (
    EXIT_LOCKED,
    EXIT_SAFETY_VALVE,
    EXIT_SUCCESS,
    EXIT_UNEXPECTED,
    CatalogError,
    RunLocked,
)
from retention.i18n import Language
from retention.logs import get_logger
from retention.observe import notices
from retention.observe.metrics import Metrics, StateCollector, process_metrics, write_textfile
from retention.observe.notify import deliver

if TYPE_CHECKING:
    import sqlalchemy as sa

    from retention.catalog.model import Notify
    from retention.decide.plan import Plan
    from retention.observe.notices import Notice

__all__ = ["Observation", "status_of"]

_log = get_logger("retention.observe")


def status_of(exit_code: int) -> str:
    """The ``status`` label of a run that exited ``exit_code``."""
    return {EXIT_SUCCESS: "completed", EXIT_SAFETY_VALVE: "stopped", 4: "partial",
            EXIT_LOCKED: "locked"}.get(exit_code, "failed")  # fmt: skip


class Observation:
    """Around one run (or ``notify --due``): what it emitted, how it ended, whom to tell."""

    def __init__(
        self,
        catalog_dir: Path | str,
        job: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        tell_failure: bool = True,
        run: bool = True,
    ) -> None:
        self.catalog_dir = Path(catalog_dir)
        self.job = job
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.tell_failure = tell_failure and run
        self.run = run
        """False: not a run (``notify --due``): counted by no run metric."""
        serving = process_metrics()
        self.metrics = serving if serving is not None else Metrics()
        self.textfile = serving is None
        self.exit_code: int | None = None
        self.error: str | None = None
        self.catalog: Catalog | None = None
        self._policies: list[events.PolicyFinished] = []
        self._runs: list[str] = []
        self._notices: list[Notice] = []
        self._stack = ExitStack()
        self._cancelled = False
        self._started = 0.0
        self._thread = 0

    # -- what the run tells it -----------------------------------------------------------------

    def finished(self, exit_code: int, error: BaseException | str | None = None) -> None:
        """The run ended with ``exit_code`` (and, if it failed, this error's kind)."""
        self.exit_code = exit_code
        if isinstance(error, BaseException):
            self.note_error(error)
        elif error is not None:
            self.error = error

    def note_error(self, exc: BaseException) -> None:
        """Remember the kind of failure (never its text: a driver's message can quote a row)."""
        self.error = type(exc).__name__
        if isinstance(exc, RunLocked):
            self.metrics.lock_waits.labels(exc.name).inc()

    def cancel(self) -> None:
        """Observe nothing after all (the run is handed to code that observes itself)."""
        self._cancelled = True

    def tell(self, found: list[Notice]) -> None:
        """Send these notices too when the observation ends."""
        self._notices.extend(found)

    def plan_waiting(self, plan: Plan, report: Path | None) -> None:
        """A plan was made for approval: its registers' records managers are told when the
        observation ends (a plan with nothing due asks nobody for anything)."""
        if self.catalog is None or self._notify() is None:
            return
        lines = [
            notices.PolicyLine(p.name, p.action, p.counts.expire, p.counts.held, p.status)
            for p in plan.policies
        ]
        if not any(line.expire for line in lines):
            return
        expires_at = plan.created_at + self.catalog.settings.plan_expires_after.delta
        self._notices.append(
            notices.plan_waiting(
                self.language, self.links(), plan_id=plan.plan_id, job=self.job,
                as_of=plan.as_of, expires_at=expires_at, policies=lines, report=report,
            )
        )  # fmt: skip

    # -- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> Observation:
        self._started = time.monotonic()
        self._thread = threading.get_ident()
        self.catalog = self._load()
        self._stack.enter_context(self.metrics.listening())
        self._stack.callback(events.subscribe(self._remember))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
        if self._cancelled:
            return
        if isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else EXIT_UNEXPECTED
            self.exit_code = code if self.exit_code is None else self.exit_code
        elif isinstance(exc, KeyboardInterrupt):
            self.note_error(exc)
            self.exit_code = 130  # interrupted, as the command line reports it
        elif exc is not None:
            self.note_error(exc)
            self.exit_code = int(getattr(exc, "exit_code", EXIT_UNEXPECTED))
        try:
            self._close()
        except Exception as failure:  # noqa: BLE001 - observing must never change the run
            _log.error("ObservationFailed", error=type(failure).__name__)

    def _remember(self, event: events.Event) -> None:
        if threading.get_ident() != self._thread:
            return  # another job's run, in another thread of the scheduler
        if isinstance(event, events.PolicyFinished):
            self._policies.append(event)
        elif isinstance(event, events.RunStarted):
            self._runs.append(event.run_id)

    def _close(self) -> None:
        code = self.exit_code if self.exit_code is not None else EXIT_SUCCESS
        job = self.job or ""
        status = status_of(code)
        if self.run:
            self.metrics.runs.labels(job, status).inc()
            self.metrics.duration.labels(job).set(time.monotonic() - self._started)
        if self.tell_failure and status in ("failed", "stopped", "partial"):
            self._notices.insert(0, self._failure(code, status))
        for notice in self._notices:
            deliver(self._notify(), notice, self.environ, self.metrics)
        self.write_metrics()

    def write_metrics(self) -> None:
        """Rewrite ``metrics_textfile`` (a process serving ``/metrics`` writes none)."""
        catalog = self.catalog
        if not self.textfile or catalog is None or not catalog.settings.metrics_textfile:
            return
        from retention.state.database import open_state

        engine: sa.Engine | None = None

        def opened() -> sa.Engine:
            nonlocal engine
            engine = open_state(catalog.state_url)
            return engine

        try:
            path = catalog.resolve(catalog.settings.metrics_textfile)
            write_textfile(path, self.metrics, StateCollector(lambda: catalog, opened))
        except OSError as exc:
            _log.error("MetricsNotWritten", error=type(exc).__name__,
                       file=str(catalog.settings.metrics_textfile))  # fmt: skip
        finally:
            if engine is not None:
                engine.dispose()

    # -- helpers -------------------------------------------------------------------------------

    def _load(self) -> Catalog | None:
        """The catalog; one with problems still names the notifiers (a run that fails on an
        invalid catalog is told of all the same)."""
        try:
            return load_catalog(self.catalog_dir, self.environ)
        except CatalogError:
            try:
                return read_catalog(self.catalog_dir, self.environ)[0]
            except Exception:  # noqa: BLE001 - no catalog at all: nothing to notify with
                return None
        except Exception:  # noqa: BLE001
            return None

    def _notify(self) -> Notify | None:
        return self.catalog.settings.notify if self.catalog is not None else None

    @property
    def language(self) -> Language:
        if self.catalog is None:
            return "en"
        settings = self.catalog.settings
        notify = settings.notify
        return (notify.language if notify else None) or settings.report_language

    def links(self) -> notices.Links:
        catalog = self.catalog
        notify = catalog.settings.notify if catalog is not None else None
        zone = catalog.settings.timezone if catalog is not None else "UTC"
        return notices.Links(notify.workspace_url if notify else None, zone)

    def _failure(self, code: int, status: str) -> Notice:
        lines = [
            notices.PolicyLine(p.policy, expire=p.expire, held=p.held, status=p.status,
                               disposed=p.disposed)
            for p in self._policies
        ]  # fmt: skip
        return notices.run_failed(
            self.language, job=self.job, exit_code=code, status=status, run_ids=self._runs,
            policies=lines, error=self.error,
        )  # fmt: skip
