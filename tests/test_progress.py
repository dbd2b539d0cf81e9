"""Progress on a terminal follows the engine's events, policy by policy."""

from __future__ import annotations

import re
import sys
from io import StringIO
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TaskID

from retention import events
from retention.progress import _update, progress_bars
from tests.terminal import on_terminal
from tests.test_cli import DAY, POLICY_NAMES, env, make_catalog


def test_bars_follow_policy_and_batch_events() -> None:
    """A policy's bar is sized by its candidates, advances per batch and ends with its status."""
    bars = Progress(console=Console(file=StringIO(), force_terminal=True))
    tasks: dict[str, TaskID] = {}
    _update(bars, tasks, events.PolicyStarted("reg/a", 5))
    _update(bars, tasks, events.BatchCommitted("reg/a", 2, 2, 0))
    task = bars.tasks[0]
    assert (task.description, task.total, task.completed) == ("reg/a", 5, 2)
    _update(bars, tasks, events.PolicyFinished("reg/a", "completed", 9, 3, 6, 0, 0, 2))
    finished = bars.tasks[0]
    assert (finished.completed, finished.total) == (2, 3)  # what the summary says: 2 of 3 due
    assert finished.fields["rate"] == "completed: disposed of 2 of 3 due, 9 scanned"


def test_no_bars_and_no_listener_when_not_a_terminal() -> None:
    """Off a terminal nothing subscribes: logs and the summary line speak instead."""
    seen: list[object] = []
    with progress_bars(False):
        unsubscribe = events.subscribe(seen.append)
        events.emit(events.PolicyStarted("reg/a", 1))
        unsubscribe()
    assert len(seen) == 1  # only the test's own listener heard it


def test_one_live_block_on_a_terminal_with_logs_above_it(tmp_path: Path) -> None:
    """`retention run` on a terminal: each policy's bar is on the screen once, every log line
    is above the bars (none printed through them), and each bar's numbers are the summary's."""
    sq = make_catalog(tmp_path / "sq")
    command = [sys.executable, "-m", "retention", "run", "--catalog", sq.root, "--as-of", DAY]
    code, lines = on_terminal(command, env())
    assert code == 0
    names = [*POLICY_NAMES]
    bars = {name: [i for i, x in enumerate(lines) if x.startswith(name + " ")] for name in names}
    assert all(len(found) == 1 for found in bars.values()), bars
    first_bar = min(found[0] for found in bars.values())
    logged = [i for i, x in enumerate(lines) if "BatchCommitted" in x or "PolicyFinished" in x]
    assert logged and max(logged) < first_bar  # every log line above the live block
    table = {
        (cells[0], cells[1]): cells
        for x in lines
        if len(cells := [c.strip() for c in x.strip("│").split("│")]) == 9
    }
    for name in names:
        bar = re.search(r"disposed of (\d+) of (\d+) due, (\d+) scanned", lines[bars[name][0]])
        assert bar is not None, lines[bars[name][0]]
        register, policy = name.split("/")
        row = table[(register, policy)]
        disposed, due, scanned = bar.groups()
        assert (row[4], row[5]) == (scanned, due) and disposed == due
