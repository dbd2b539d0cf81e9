"""Progress on a terminal: one Rich bar per policy, records per second.

Only used when standard error is a terminal; elsewhere (cron, Kubernetes) the JSON log and
the one-line summary say what happened. The display listens to the engine's events, so the
engine knows nothing about terminals. It is one live block at the bottom of the terminal:
log lines are printed above it (the logger writes to whatever ``sys.stderr`` is, and the
display's proxy is that while it runs). While a policy runs its bar counts the candidates
it has worked through; when it finishes the bar shows what the run's summary shows for it:
records disposed of out of those due, and records scanned.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from retention import events

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


@contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """Show a bar per policy while the body runs (nothing when ``enabled`` is false)."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def on_event(event: events.Event) -> None:
        _update(bars, tasks, event)

    unsubscribe = events.subscribe(on_event)
    try:
        with bars:
            yield
    finally:
        unsubscribe()


def _update(bars: Progress, tasks: dict[str, TaskID], event: events.Event) -> None:
    if isinstance(event, events.PolicyStarted):
        tasks[event.policy] = bars.add_task(event.policy, total=event.candidates or 1, rate="")
    elif isinstance(event, events.BatchCommitted) and event.policy in tasks:
        task = tasks[event.policy]
        bars.advance(task, event.records)
        speed = bars.tasks[task].speed
        bars.update(task, rate=f"{speed:,.0f} records/s" if speed else "")
    elif isinstance(event, events.PolicyFinished) and event.policy in tasks:
        task = tasks[event.policy]
        bars.update(
            task,
            total=max(event.expire, event.disposed, 1),
            completed=event.disposed,
            rate=f"{event.status}: disposed of {event.disposed} of {event.expire} due, "
            f"{event.scanned} scanned",
        )
