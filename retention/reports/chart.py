"""Geometry of a stacked bar chart, computed here so the template only draws it.

The HTML report draws this as inline SVG; keeping the arithmetic (scale, ticks, bar
rectangles) in Python makes it testable and keeps the template free of it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Muted colours that stay apart on screen and in grey print (dark, light, dark, ...).
PALETTE = (
    "#2f4b7c", "#a5c8e4", "#8a5a2b", "#e3c48f", "#3d6b45", "#b5d6a7", "#6b3d6b", "#d9b3d9",
)  # fmt: skip


@dataclass(frozen=True)
class Bar:
    series: str
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Column:
    label: str
    total: int
    x: float
    """Centre of the column."""
    top: float
    """Where the column's stack ends, for its total above it."""


@dataclass(frozen=True)
class StackedBars:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    """Plot area: x from ``left`` to ``right``, y from ``top`` (max) to ``bottom`` (zero)."""
    bars: list[Bar]
    columns: list[Column]
    ticks: list[Tick]
    legend: list[tuple[str, str]]
    """(series, colour) in drawing order, for the series that have a bar."""
    maximum: int


def nice_step(maximum: int, ticks: int = 5) -> int:
    """A round step (1, 2, 5 × 10ⁿ) that divides ``0..maximum`` into at most ``ticks`` parts."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor * ticks >= maximum:
                return step * factor
        step *= 10


def stacked_bars(
    labels: list[str],
    series: dict[str, list[int]],
    *,
    width: int = 760,
    height: int = 300,
) -> StackedBars:
    """Columns per label, each a stack of one bar per series (zero bars are left out, and a
    series that is zero throughout has no colour in the legend)."""
    left, right, top, bottom = 64, width - 12, 24, height - 56
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    step = nice_step(max(totals, default=0) or 1)
    maximum = step * max(1, -(-max(totals, default=0) // step))
    scale = (bottom - top) / maximum
    slot = (right - left) / max(1, len(labels))
    bar_width = slot * 0.62
    shown = [name for name, values in series.items() if any(v > 0 for v in values)]
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(shown)}
    bars: list[Bar] = []
    columns: list[Column] = []
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_width) / 2
        base = float(bottom)
        for name, values in series.items():
            value = values[i]
            if value <= 0:
                continue
            h = value * scale
            base -= h
            bars.append(Bar(name, label, value, round(x, 2), round(base, 2), round(bar_width, 2),
                            round(h, 2), colours[name]))  # fmt: skip
        columns.append(Column(label, totals[i], round(left + slot * (i + 0.5), 2), round(base, 2)))
    ticks = [Tick(v, round(bottom - v * scale, 2)) for v in range(0, maximum + 1, step)]
    return StackedBars(
        width, height, left, right, top, bottom, bars, columns, ticks,
        list(colours.items()), maximum,
    )  # fmt: skip
