"""Small inline SVG charts of the last 24 h. No script: the browser draws them as they are.

Points come from the history's 5-minute slots (monitor/series.py); a slot without a figure
is a gap in the line, except for sparse series (speed tests), drawn as joined dots.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

W, H = 320, 120  # viewBox; the SVG scales to its card's width
LEFT, RIGHT, TOP, BOTTOM = 34, 6, 8, 18
GAP = 1.5 * 300  # points further apart than this (1.5 history slots) are not joined


@dataclass
class Line:
    name: str
    css: str  # class giving the stroke colour
    points: Sequence[tuple[float, float]]  # (time, value)
    dots: bool = False  # draw each point (sparse series such as speed tests)


@dataclass
class Band:
    low: float
    high: float
    colour: str
    label: str = ""


@dataclass
class Chart:
    title: str
    unit: str
    lines: list[Line]
    bands: list[Band] = field(default_factory=list)
    marks: list[tuple[float, float]] = field(default_factory=list)  # (time, 0..1 loss)
    floor_max: float = 1.0  # the y axis reaches at least this


def nice_max(value: float) -> float:
    """The axis top for `value`: 1, 2, 2.5 or 5 times a power of ten (1 for nothing)."""
    if value <= 0:
        return 1.0
    exponent: float = 10 ** math.floor(math.log10(value))  # an int for value >= 1
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def axis_label(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def render(chart: Chart, start: float, end: float) -> str:
    lines = [Line(line.name, line.css, [(t, v) for t, v in line.points if start <= t <= end],
                  line.dots) for line in chart.lines]
    top = max([v for line in lines for _, v in line.points] + [chart.floor_max])
    y_max = nice_max(top * 1.05)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(at: float) -> float:
        return LEFT + (at - start) / (end - start) * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - min(value, y_max) / y_max * plot_h

    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" '
             f'aria-label="{escape(chart.title)}, last 24 hours">']
    for band in chart.bands:
        if band.low >= y_max:
            continue
        parts.append(f'<rect class="band" x="{LEFT}" width="{plot_w}" y="{y(band.high):.1f}" '
                     f'height="{y(band.low) - y(band.high):.1f}" fill="{band.colour}">'
                     f'<title>{escape(band.label)}</title></rect>')
    for fraction in (0, 0.5, 1):
        value = y_max * fraction
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}"/><text class="axis" x="{LEFT - 3}" '
                     f'y="{y(value) + 3:.1f}" text-anchor="end">{axis_label(value)}</text>')
    for at, anchor in ((start, "start"), (start + (end - start) / 2, "middle"), (end, "end")):
        label = "now" if at == end else time.strftime("%H:%M", time.localtime(at))
        parts.append(f'<text class="axis" x="{x(at):.1f}" y="{H - 4}" '
                     f'text-anchor="{anchor}">{label}</text>')
    for at, loss in chart.marks:
        parts.append(f'<rect class="loss-mark" x="{x(at) - 1:.1f}" y="{TOP}" width="2.5" '
                     f'height="{max(3.0, loss * plot_h):.1f}"><title>{loss:.0%} lost at '
                     f'{time.strftime("%H:%M", time.localtime(at))}</title></rect>')
    for line in lines:
        parts.append(_path(line, x, y))
    parts.append("</svg>")
    return "".join(parts)


def _path(line: Line, x: Callable[[float], float], y: Callable[[float], float]) -> str:
    commands: list[str] = []
    previous = None
    pts = line.points
    for at, value in pts:
        joined = previous is not None and (line.dots or at - previous <= GAP)
        # "h0.1" after a move: a lone point between two gaps still shows as a round dot
        commands.append(f'L{x(at):.1f},{y(value):.1f}' if joined
                        else f'M{x(at):.1f},{y(value):.1f}h0.1')
        previous = at
    out = [f'<path class="series {line.css}" data-points="{len(pts)}" '
           f'd="{" ".join(commands) or "M0,0"}"><title>{escape(line.name)}</title></path>']
    if line.dots:
        out.extend(f'<circle class="dot {line.css}" cx="{x(at):.1f}" cy="{y(v):.1f}" r="2.2"/>'
                   for at, v in pts)
    return "".join(out)


def legend(chart: Chart) -> str:
    items = "".join(f'<span class="key {line.css}">{escape(line.name)}</span>'
                    for line in chart.lines)
    return f'<div class="legend">{items}<span class="unit">{escape(chart.unit)}</span></div>'
