"""Small, dependency-free SVG charts for the HTML report (no script, no network).

Every chart is a ``<svg>`` string with a title, labelled axes and a legend; series are
drawn in a fixed palette. The data comes from the views (analysis/*.sql); nothing here
computes a metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
W, H = 760, 340
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 34, 46

Series = Sequence[tuple[str, Sequence[tuple[float, float]]]]


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if step * m >= raw)
    start = math.floor(lo / step) * step
    ticks = (start + i * step for i in range(int((hi - start) / step) + 2))
    return [t for t in ticks if lo - step * 1e-9 <= t <= hi + step * 1e-9]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or v == 0 else f"{v:.2g}"


class Frame:
    """Maps data to pixels inside the plot area of one chart."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float],
                 height: int = H) -> None:
        self.x0, self.x1 = x if x[1] > x[0] else (x[0], x[0] + 1)
        self.y0, self.y1 = y if y[1] > y[0] else (y[0], y[0] + 1)
        self.height = height

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return self.height - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (
            self.height - TOP - BOTTOM)


def _open(title: str, height: int = H) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{W}" '
            f'height="{height}" viewBox="0 0 {W} {height}" role="img">',
            f"<title>{escape(title)}</title>",
            f'<rect x="0" y="0" width="{W}" height="{height}" fill="#ffffff"/>',
            f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14" '
            f'font-weight="bold">{escape(title)}</text>']


def _x_axis(f: Frame, label: str, ticks: list[float]) -> list[str]:
    base = f.height - BOTTOM
    out = [f'<line x1="{LEFT}" y1="{base}" x2="{W - RIGHT}" y2="{base}" stroke="#333"/>']
    for t in ticks:
        if f.x0 <= t <= f.x1:
            out.append(f'<line x1="{f.px(t):.1f}" y1="{base}" x2="{f.px(t):.1f}" '
                       f'y2="{base + 4}" stroke="#333"/><text x="{f.px(t):.1f}" '
                       f'y="{base + 16}" text-anchor="middle" font-size="11">{_fmt(t)}</text>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{f.height - 8}" text-anchor="middle" '
               f'font-size="12">{escape(label)}</text>')
    return out


def _y_axis(f: Frame, label: str, ticks: list[float]) -> list[str]:
    out = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{f.height - BOTTOM}" stroke="#333"/>']
    for t in ticks:
        if f.y0 <= t <= f.y1:
            out.append(f'<line x1="{LEFT - 4}" y1="{f.py(t):.1f}" x2="{W - RIGHT}" '
                       f'y2="{f.py(t):.1f}" stroke="#e5e5e5"/><text x="{LEFT - 6}" '
                       f'y="{f.py(t) + 4:.1f}" text-anchor="end" font-size="11">'
                       f"{_fmt(t)}</text>")
    mid = (TOP + f.height - BOTTOM) / 2
    out.append(f'<text x="14" y="{mid}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {mid})">{escape(label)}</text>')
    return out


def legend(labels: Sequence[str], height: int = H) -> str:
    """An HTML legend under a chart (long cell names do not fit inside the SVG)."""
    items = "".join(f'<span class="key"><i style="background:{color(i)}"></i>'
                    f"{escape(lab)}</span>" for i, lab in enumerate(labels))
    return f'<div class="legend">{items}</div>'


def line_chart(title: str, series: Series, xlabel: str, ylabel: str,
               step: bool = False, points: bool = False) -> str:
    """Lines (or markers, ``points``) per series; ``step`` draws an ECDF-style staircase."""
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    if not xs:
        return empty_chart(title)
    f = Frame((min(xs), max(xs)), (min(0.0, min(ys)), max(ys)))
    out = _open(title) + _y_axis(f, ylabel, nice_ticks(f.y0, f.y1))
    out += _x_axis(f, xlabel, nice_ticks(f.x0, f.x1))
    for i, (name, pts) in enumerate(series):
        out.append(f"<g><title>{escape(name)}</title>")
        if points:
            out += [f'<circle cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="2.2" '
                    f'fill="{color(i)}" fill-opacity="0.7"/>' for x, y in pts]
        else:
            out.append(f'<polyline fill="none" stroke="{color(i)}" stroke-width="2" '
                       f'points="{_path(f, pts, step)}"/>')
        out.append("</g>")
    return "\n".join([*out, "</svg>"])


def _path(f: Frame, pts: Sequence[tuple[float, float]], step: bool) -> str:
    coords: list[str] = []
    prev_y: float | None = None
    for x, y in pts:
        if step and prev_y is not None:
            coords.append(f"{f.px(x):.1f},{f.py(prev_y):.1f}")
        coords.append(f"{f.px(x):.1f},{f.py(y):.1f}")
        prev_y = y
    return " ".join(coords)


def box_chart(title: str, boxes: Sequence[tuple[str, Sequence[float]]], xlabel: str) -> str:
    """Horizontal box plots; each box is (label, [low whisker, q1, median, q3, high whisker])."""
    boxes = [(n, b) for n, b in boxes if len(b) == 5 and all(v is not None for v in b)]
    if not boxes:
        return empty_chart(title)
    height = TOP + BOTTOM + 30 * len(boxes) + 10
    lo, hi = min(b[0] for _, b in boxes), max(b[4] for _, b in boxes)
    f = Frame((min(0.0, lo), hi), (0, len(boxes)), height)
    out = _open(title, height) + _x_axis(f, xlabel, nice_ticks(f.x0, f.x1))
    for i, (name, (w0, q1, med, q3, w1)) in enumerate(boxes):
        y = f.py(len(boxes) - i - 0.5)
        c = color(i)
        out.append(
            f"<g><title>{escape(name)}: p5 {_fmt(w0)}, p25 {_fmt(q1)}, p50 {_fmt(med)}, "
            f"p75 {_fmt(q3)}, p95 {_fmt(w1)}</title>"
            f'<line x1="{f.px(w0):.1f}" y1="{y:.1f}" x2="{f.px(w1):.1f}" y2="{y:.1f}" '
            f'stroke="{c}"/><rect x="{f.px(q1):.1f}" y="{y - 9:.1f}" '
            f'width="{max(f.px(q3) - f.px(q1), 1):.1f}" height="18" fill="{c}" '
            f'fill-opacity="0.35" stroke="{c}"/><line x1="{f.px(med):.1f}" y1="{y - 9:.1f}" '
            f'x2="{f.px(med):.1f}" y2="{y + 9:.1f}" stroke="{c}" stroke-width="3"/>'
            f'<text x="{LEFT + 4}" y="{y - 11:.1f}" font-size="10">{i + 1}</text></g>')
    return "\n".join([*out, "</svg>"])


def stacked_bars(title: str, bars: Sequence[tuple[str, Sequence[tuple[str, float]]]],
                 xlabel: str) -> str:
    """Horizontal bars split into segments; segment colours follow their order."""
    if not bars:
        return empty_chart(title)
    height = TOP + BOTTOM + 30 * len(bars) + 10
    hi = max(sum(max(v, 0) for _, v in segs) for _, segs in bars)
    f = Frame((0, hi), (0, len(bars)), height)
    out = _open(title, height) + _x_axis(f, xlabel, nice_ticks(0, hi))
    for i, (name, segs) in enumerate(bars):
        y, x = f.py(len(bars) - i - 0.5), 0.0
        for j, (phase, v) in enumerate(segs):
            v = max(v, 0)
            out.append(f'<rect x="{f.px(x):.1f}" y="{y - 10:.1f}" '
                       f'width="{f.px(x + v) - f.px(x):.2f}" height="20" fill="{color(j)}">'
                       f"<title>{escape(name)} {escape(phase)}: {_fmt(v)}</title></rect>")
            x += v
        out.append(f'<text x="{LEFT + 4}" y="{y - 12:.1f}" font-size="10">{i + 1}</text>')
    return "\n".join([*out, "</svg>"])


def empty_chart(title: str) -> str:
    out = _open(title, 80)
    out.append('<text x="20" y="55" font-size="12">no data</text>')
    return "\n".join([*out, "</svg>"])
