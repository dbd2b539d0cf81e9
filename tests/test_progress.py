"""Progress on a terminal follows the engine's events, policy by policy."""

from __future__ import annotations

from io import StringIO

from rich.console import Console
from rich.progress import Progress, TaskID

from retention import events
from retention.progress import _update, progress_bars


def test_bars_follow_policy_and_batch_events() -> None:
    """A policy's bar is sized by its candidates, advances per batch and ends with its status."""
    bars = Progress(console=Console(file=StringIO(), force_terminal=True))
    tasks: dict[str, TaskID] = {}
    _update(bars, tasks, events.PolicyStarted("reg/a", 5))
    _update(bars, tasks, events.BatchCommitted("reg/a", 2, 2, 0))
    task = bars.tasks[0]
    assert (task.description, task.total, task.completed) == ("reg/a", 5, 2)
    _update(bars, tasks, events.PolicyFinished("reg/a", "completed", 9, 2, 7, 0, 0, 2))
    assert bars.tasks[0].completed == 5 and bars.tasks[0].fields["rate"] == "completed"


def test_no_bars_and_no_listener_when_not_a_terminal() -> None:
    """Off a terminal nothing subscribes: logs and the summary line speak instead."""
    seen: list[object] = []
    with progress_bars(False):
        unsubscribe = events.subscribe(seen.append)
        events.emit(events.PolicyStarted("reg/a", 1))
        unsubscribe()
    assert len(seen) == 1  # only the test's own listener heard it
