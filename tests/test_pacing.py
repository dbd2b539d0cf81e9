"""Batches sized by time: grow while batches stay under the target, shrink after a slow one.

The pacer is told each batch's source-transaction time; the clock is injected, so these
tests say exactly which sizes follow which timings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retention import api, events
from retention.catalog.model import Batches, Settings
from retention.enforce import pacing
from retention.enforce.pacing import Pacer
from retention.workspace import Workspace
from tests.conftest import AS_OF


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fast_full_batches_double_up_to_the_cap() -> None:
    """Full batches well under the target double the size, never past the cap."""
    pacer = Pacer(start=1000, target_seconds=0.5, most=10_000)
    sizes = [pacer.took(pacer(), 0.01) for _ in range(6)]
    assert sizes == [2000, 4000, 8000, 10_000, 10_000, 10_000]


def test_growth_slows_near_the_target() -> None:
    """A batch at 80 % of the target grows by a quarter, to what would take the target."""
    pacer = Pacer(start=1000, target_seconds=0.5, most=10_000)
    assert pacer.took(1000, 0.4) == 1250


def test_a_slow_batch_shrinks_the_next_to_meet_the_target() -> None:
    """A lock wait that made a batch take ten times the target cuts the size tenfold."""
    pacer = Pacer(start=8000, target_seconds=0.5, most=10_000)
    assert pacer.took(8000, 5.0) == 800
    assert pacer.took(800, 60.0) == 6  # a long wait: down to a handful, never to zero
    assert pacer.took(6, 3600.0) == 1


def test_a_short_batch_does_not_grow_the_size() -> None:
    """The last few due records come fast because they are few: no growth from them."""
    pacer = Pacer(start=1000, target_seconds=0.5, most=10_000)
    assert pacer.took(10, 0.0001) == 1000


def test_without_a_target_every_batch_has_batch_size_records() -> None:
    """``batches: {target_seconds: null}`` keeps the fixed count of earlier versions."""
    pacer = Pacer.for_settings(Settings(batch_size=700, batches=Batches(target_seconds=None)))
    assert [pacer.took(700, s) for s in (0.001, 10.0, 0.0)] == [700, 700, 700]


def test_the_cap_follows_batch_size_unless_given() -> None:
    """No ``max_size``: 5,000, or a larger ``batch_size`` (an existing catalog's batches
    never get smaller by default); with one, ``batch_size`` above it starts at the cap."""
    assert Pacer.for_settings(Settings()).most == 5000
    assert Pacer.for_settings(Settings(batch_size=7000)).most == 7000
    assert Pacer.for_settings(Settings(batch_size=20_000)).most == 20_000
    capped = Pacer.for_settings(Settings(batch_size=5000, batches=Batches(max_size=2000)))
    assert (capped(), capped.most) == (2000, 2000)


def test_the_timing_context_reads_the_injected_clock() -> None:
    clock = Clock()
    pacer = Pacer(start=100, target_seconds=1.0, most=1000, clock=clock)
    with pacer.timing() as took:
        clock.now += 0.25
    assert took.seconds == 0.25


sizes = st.integers(min_value=1, max_value=50_000)
seconds = st.floats(min_value=0, max_value=3600, allow_nan=False)
targets = st.floats(min_value=0.001, max_value=60, allow_nan=False)


@given(sizes, sizes, targets, st.lists(st.tuples(sizes, seconds), max_size=30))
def test_the_size_stays_between_one_and_the_cap(
    start: int, most: int, target: float, batches: list[tuple[int, float]]
) -> None:
    """Whatever the timings, the size is at least 1 and at most the cap."""
    pacer = Pacer(start, target, most)
    for rows, took in batches:
        assert 1 <= pacer.took(rows, took) <= max(1, most)


@given(sizes, targets, seconds)
def test_one_batch_moves_the_size_the_right_way(start: int, target: float, took: float) -> None:
    """Under the target a full batch never shrinks the size nor more than doubles it; over
    the target the next batch is no larger than what would have taken the target."""
    pacer = Pacer(start, target, 50_000)
    after = pacer.took(start, took)
    if took <= target:
        assert start <= after <= 2 * start
    else:
        assert after <= max(1, start * target / took)


def test_a_run_grows_its_batches_from_batch_size(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run starts at ``batch_size`` and, its batches being fast, doubles them: the
    alumni policy's three due records in batches of 1, then 2 (at batch_size 1)."""
    settings = catalog / "retention.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("batch_size: 2", "batch_size: 1"),
        encoding="utf-8",
    )
    clock = Clock()
    monkeypatch.setattr(pacing, "monotonic", clock)
    seen: list[events.BatchCommitted] = []
    unsubscribe = events.subscribe(
        lambda e: seen.append(e) if isinstance(e, events.BatchCommitted) else None
    )
    try:
        with Workspace.open(catalog, environ) as ws:
            outcome = api.run(ws, as_of=AS_OF)
    finally:
        unsubscribe()
    assert outcome.exit_code == 0
    by_policy: dict[str, list[int]] = {}
    for event in seen:
        by_policy.setdefault(event.policy, []).append(event.records)
    assert by_policy["xamk-alumni/alumni-membership"] == [1, 2]


def test_a_plan_reads_its_pages_at_the_cap(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan locks nothing: it pages at the cap (5,000 here), not at ``batch_size`` (2)."""
    from retention.connectors.sql import SqlConnector

    sizes: list[object] = []
    original = SqlConnector.candidates

    def recorded(self: SqlConnector, selection: object, batch_size: object) -> object:
        sizes.append(batch_size)
        return original(self, selection, batch_size)  # type: ignore[arg-type]

    monkeypatch.setattr(SqlConnector, "candidates", recorded)
    with Workspace.open(catalog, environ) as ws:
        api.plan(ws, as_of=AS_OF)
    assert sizes and set(sizes) == {5000}
