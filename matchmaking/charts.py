"""Charts of the admin's Overview, drawn on the server as inline SVG.

No JavaScript and nothing from a CDN: this computes the geometry of a chart of one
value per minute (bars, or lines with a point per minute that has a value) and the
template ``admin/matchmaking/includes/chart.html`` writes it out as ``<svg>``. Every
drawn value carries ``data-value`` and a ``<title>`` (the browser's tooltip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

WIDTH, HEIGHT = 480, 190
LEFT, RIGHT, TOP, BOTTOM = 50, 8, 10, 26
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
# Nice maxima (times a power of ten) and the number of grid steps that gives round labels for each.
NICE_STEPS = {1: 5, 2: 4, 2.5: 5, 5: 5, 10: 5}


@dataclass(frozen=True)
class Series:
    key: str  # CSS class suffix and data-series
    label: str
    values: list[float | None]  # one per minute; None: nothing to draw
    unit: str = ""  # "s" for seconds, else a count


@dataclass
class Chart:
    id: str
    title: str
    kind: str  # "bars" or "lines"
    series: list[Series]
    minutes: list[int]
    y_max: float = 1.0
    grid: list[dict] = field(default_factory=list)
    x_labels: list[dict] = field(default_factory=list)
    bars: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    empty: bool = True
    width: int = WIDTH
    height: int = HEIGHT
    plot: dict = field(default_factory=dict)


def nice_ceiling(value: float, whole: bool) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (for a
    ``whole`` count: a whole number, at least 1)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in NICE_STEPS:
        ceiling = step * power
        if ceiling >= value - 1e-12 and (not whole or ceiling == int(ceiling)):
            return max(ceiling, 1.0) if whole else ceiling
    return 10 * power


def grid_steps(y_max: float, whole: bool) -> int:
    """Grid lines above zero for a nice maximum: round labels, whole ones for counts."""
    if whole and y_max <= 5:
        return int(y_max)
    mantissa = round(y_max / 10 ** math.floor(math.log10(y_max)), 6)
    return NICE_STEPS.get(mantissa, 4)


def format_value(value: float, unit: str) -> str:
    if unit != "s" or value == 0:
        return f"{value:g}" if value != int(value) else str(int(value))
    if value >= 60:
        return f"{value / 60:.3g} min"
    if value >= 1:
        return f"{value:.3g} s"
    return f"{value * 1000:.3g} ms"


def minute_label(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%H:%M")


def build(chart: Chart) -> Chart:
    """Fill in the geometry of ``chart`` from its series."""
    slot = PLOT_WIDTH / len(chart.minutes)
    unit = chart.series[0].unit
    present = [v for s in chart.series for v in s.values if v is not None]
    chart.empty = not any(present)
    chart.y_max = nice_ceiling(max(present, default=0), whole=unit != "s")
    chart.plot = {"x": LEFT, "cx": LEFT + PLOT_WIDTH / 2, "cy": TOP + PLOT_HEIGHT / 2}

    def y(value: float) -> float:
        return round(TOP + PLOT_HEIGHT - value / chart.y_max * PLOT_HEIGHT, 2)

    steps = grid_steps(chart.y_max, whole=unit != "s")
    chart.grid = [
        {"y": y(chart.y_max * i / steps), "label": format_value(chart.y_max * i / steps, unit)}
        for i in range(steps + 1)
    ]
    chart.x_labels = [
        {"x": round(LEFT + (i + 0.5) * slot, 2), "label": minute_label(minute)}
        for i, minute in enumerate(chart.minutes)
        if minute % 10 == 0
    ]
    if chart.kind == "bars":
        [series] = chart.series
        chart.bars = [
            {
                "x": round(LEFT + i * slot + slot * 0.15, 2),
                "y": y(value or 0),
                "width": round(slot * 0.7, 2),
                "height": round((value or 0) / chart.y_max * PLOT_HEIGHT, 2),
                "value": format_value(value or 0, unit),
                "minute": minute_label(minute),
                "key": series.key,
                "label": series.label,
            }
            for i, (minute, value) in enumerate(zip(chart.minutes, series.values, strict=True))
        ]
        return chart
    for series in chart.series:
        points = [
            {
                "x": round(LEFT + (i + 0.5) * slot, 2),
                "y": y(value),
                "value": format_value(value, unit),
                "minute": minute_label(minute),
            }
            for i, (minute, value) in enumerate(zip(chart.minutes, series.values, strict=True))
            if value is not None
        ]
        # A line joins only neighbouring minutes: a minute without a value is a gap.
        segments, run, previous = [], [], None
        for i, value in enumerate(series.values):
            if value is None:
                continue
            if previous is not None and i != previous + 1 and run:
                segments.append(run)
                run = []
            run.append(f"{round(LEFT + (i + 0.5) * slot, 2)},{y(value)}")
            previous = i
        if run:
            segments.append(run)
        chart.lines.append(
            {
                "key": series.key,
                "label": series.label,
                "points": points,
                "segments": [" ".join(segment) for segment in segments],
            }
        )
    return chart
