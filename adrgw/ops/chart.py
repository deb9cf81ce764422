"""The meter chart: samples + a time window -> inline SVG, drawn cheaply and without lying about gaps.

Pure (no I/O, no clock): times are epoch seconds, passed in. Why this module exists on its own:
24 h of 10 s samples is 8,640 points, more than a chart of ~900 px can show. ``downsample`` keeps,
per pixel column, the first, lowest, highest and last sample of each *run* (samples closer than
``gap`` seconds apart), so spikes survive and a run never crosses a gap: an instant the meter did
not answer stays a hole in the line, never joined or filled (tests/test_pages.py, hypothesis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Sequence

Point = tuple[float, float]  # (epoch seconds, value)

# Two samples more than this many cadence intervals apart have a missing instant between them.
GAP_INTERVALS = 1.5


def runs(points: Sequence[Point], gap: float) -> list[list[Point]]:
    """Split time-ordered ``points`` where consecutive instants are more than ``gap`` apart."""
    out: list[list[Point]] = []
    previous: float | None = None
    for point in points:
        if previous is None or point[0] - previous > gap:
            out.append([])
        out[-1].append(point)
        previous = point[0]
    return out


def downsample(points: Sequence[Point], gap: float, t0: float, t1: float, columns: int) -> list[list[Point]]:
    """Runs of ``points`` (see ``runs``) reduced to at most 4 points per pixel column each.

    Every returned point is an input point; each run keeps its first and last sample (so gaps start
    and end where they really do) and the minimum and maximum of each column (so peaks are drawn).
    """
    return downsample_runs(runs(points, gap), t0, t1, columns)


def downsample_runs(split: list[list[Point]], t0: float, t1: float, columns: int) -> list[list[Point]]:
    """``downsample`` for points already split into runs."""
    width = max(t1 - t0, 1e-9)
    scale = columns / width
    floor = math.floor
    result: list[list[Point]] = []
    for run in split:
        kept: list[Point] = []
        column_points: list[Point] = []
        column = None
        for point in run:
            c = floor((point[0] - t0) * scale)
            if c != column and column_points:
                kept.extend(_column_extremes(column_points))
                column_points = []
            column = c
            column_points.append(point)
        kept.extend(_column_extremes(column_points))
        result.append(kept)
    return result


def _column_extremes(points: list[Point]) -> list[Point]:
    """First, min, max, last of one column, in time order, each once."""
    if len(points) <= 4:
        return points
    low = min(points, key=lambda p: p[1])
    high = max(points, key=lambda p: p[1])
    chosen = {id(points[0]): points[0], id(low): low, id(high): high, id(points[-1]): points[-1]}
    return sorted(chosen.values(), key=lambda p: p[0])


@dataclass(frozen=True)
class ChartData:
    """What the chart shows: meter samples of the window and the instants still waiting for the VTN."""

    samples: Sequence[Point]  # time-ordered
    queued: Sequence[float]  # instants (epoch seconds) of samples not yet acknowledged by the VTN
    interval: float  # the meter cadence, seconds
    unit: str = ""


# Drawing area (SVG user units; the SVG scales to the page width).
WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 12, 44
STRIP = 8  # height of the delivered / queued strip under the plot


TICK_STEPS = (60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600)


def tick_step(span: float, most: int = 12) -> int:
    """The smallest round step (seconds) that puts at most ``most`` time ticks on ``span``."""
    for step in TICK_STEPS:
        if span / step <= most:
            return step
    return TICK_STEPS[-1]


def time_label(t: float) -> str:
    """HH:MM UTC, computed without datetime objects (called for every tick)."""
    seconds = int(t) % 86400
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def render_chart(data: ChartData, t0: float, t1: float) -> str:
    """An ``<svg>`` of the window [t0, t1]: the line (one polyline per run), gap marks between runs,
    and a strip under it, green where samples were delivered and orange where they are still queued."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    gap = data.interval * GAP_INTERVALS
    samples = [p for p in data.samples if t0 <= p[0] <= t1]
    span = max(t1 - t0, 1e-9)

    def x(t: float) -> float:
        return LEFT + (t - t0) / span * plot_w

    values = [v for _, v in samples]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * plot_h

    parts = [f'<svg id="meter-chart" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="meter, last 24 h">',
             f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>']
    for k in range(5):  # value grid
        v = lo + (hi - lo) * k / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
                     f'<text class="axis" x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.4g}</text>')
    step = tick_step(span)
    tick = math.ceil(t0 / step) * step
    while tick <= t1:
        parts.append(f'<line class="grid" x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{TOP}" y2="{TOP + plot_h}"/>'
                     f'<text class="axis" x="{x(tick):.1f}" y="{HEIGHT - 4}" text-anchor="middle">'
                     f'{time_label(tick)}</text>')
        tick += step
    split = runs(samples, gap)
    drawn = downsample_runs(split, t0, t1, plot_w)
    for before, after in zip(drawn, drawn[1:]):
        a, b = before[-1][0], after[0][0]
        parts.append(f'<rect class="gap" data-from="{a:.0f}" data-to="{b:.0f}" x="{x(a):.1f}" y="{TOP}" '
                     f'width="{max(x(b) - x(a), 1.0):.1f}" height="{plot_h}"><title>no meter value '
                     f'{time_label(a)}..{time_label(b)} UTC</title></rect>')
    for run in drawn:
        if len(run) == 1:
            t, v = run[0]
            parts.append(f'<circle class="line" cx="{x(t):.1f}" cy="{y(v):.1f}" r="1.5"/>')
        else:
            coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
            parts.append(f'<polyline class="line" data-from="{run[0][0]:.0f}" data-to="{run[-1][0]:.0f}" '
                         f'points="{coords}"/>')
    strip_y = TOP + plot_h + 4
    queued_set = set(data.queued)
    delivered: list[tuple[float, float]] = []  # (first, last) instant of each delivered stretch
    for run in split if queued_set else []:
        first = last = None
        for t, _ in run:
            if t in queued_set:
                if first is not None:
                    delivered.append((first, last))  # type: ignore[arg-type]
                first = None
            else:
                first = t if first is None else first
                last = t
        if first is not None:
            delivered.append((first, last))  # type: ignore[arg-type]
    if not queued_set:
        delivered = [(run[0][0], run[-1][0]) for run in split]
    queued = [(r[0][0], r[-1][0]) for r in runs([(t, 0.0) for t in data.queued if t0 <= t <= t1], gap)]
    for cls, stretches in (("delivered", delivered), ("queued", queued)):
        for first_t, last_t in stretches:
            a, b = first_t, last_t + data.interval
            parts.append(f'<rect class="{cls}" data-from="{a:.0f}" data-to="{b:.0f}" x="{x(a):.1f}" '
                         f'y="{strip_y}" width="{max(x(b) - x(a), 1.0):.1f}" height="{STRIP}"/>')
    parts.append(f'<text class="axis" x="{LEFT}" y="{TOP + 10}">{escape(data.unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)
