"""Plotly figures of the HTML report, as plain JSON-ready dicts that plotly.js (inlined in
the page, analysis/report.py) draws: hover, zoom and a legend that toggles each cell.

The data comes from the report's views (analysis/80_report.sql, budget, compare):
per-cell statistics and a bounded sample of requests, never every row. Nothing here
computes a metric; it only lays the numbers out.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from latlab.analysis.readable import clip, short_name

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
PHASE_COLORS = ("#8dd3c7", "#bebada", "#fb8072", "#80b1d3", "#fdb462")
VERDICT_COLORS = {"faster": "#2ca02c", "slower": "#d62728", "within noise": "#7f7f7f"}
Json = dict[str, Any]


@dataclass(frozen=True)
class Cell:
    """One (run, cell) of the report: its plot label, full name and colour."""

    run_id: str
    cell: str
    label: str
    color: str

    @property
    def full(self) -> str:
        return f"{self.cell} (run {self.run_id})"


@dataclass
class Figure:
    """One plot: a title, a caption under it, and plotly's data and layout."""

    title: str
    caption: str
    data: list[Json] = field(default_factory=list)
    layout: Json = field(default_factory=dict)

    def spec(self) -> Json:
        return {"data": self.data, "layout": self.layout}


def cells(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Cell]:
    """A short label per (run, cell): the cell name without the parts every cell shares,
    prefixed by the run's suffix when there are several runs; colours in order."""
    names = [k[1] for k in keys]
    runs = sorted({k[0] for k in keys})
    out = {}
    for i, (run_id, cell) in enumerate(keys):
        label = short_name(cell, names)
        if len(runs) > 1:
            label = f"{run_id.rpartition('-')[2] or run_id} {label}"
        out[(run_id, cell)] = Cell(run_id, cell, clip(label), PALETTE[i % len(PALETTE)])
    return out


def _axis(title: str, **extra: Any) -> Json:
    return {"title": {"text": title}, "zeroline": False, "automargin": True, **extra}


def _layout(height: int, xtitle: str, ytitle: str = "", **extra: Any) -> Json:
    return {"height": height, "margin": {"l": 10, "r": 20, "t": 36, "b": 50},
            "xaxis": _axis(xtitle), "yaxis": _axis(ytitle), "hovermode": "closest",
            "legend": {"orientation": "v"}, "font": {"size": 12},
            "plot_bgcolor": "#fbfbfb", **extra}


def _hover(cell: Cell, n: int, lines: str) -> str:
    """A hover template: the full cell, its run and n, then ``lines`` (plotly's %{…})."""
    return (f"<b>{escape(cell.cell)}</b><br>run {escape(cell.run_id)} · n {n:,}<br>{lines}"
            "<extra></extra>")


# ---------------------------------------------------------------- ECDF


def ecdf(rows: Sequence[Json], labels: dict[tuple[str, str], Cell]) -> Figure:
    """The TTFT ECDF of each cell's sampled requests (every request when the cell is small):
    a step at each real TTFT; hover names the request."""
    fig = Figure("TTFT ECDF per cell", "Share of a cell's requests with TTFT ≤ x: one step per "
                 "request (a cell with more requests than plotted shows an evenly spread "
                 "sample, its size in the legend).")
    for key, cell in labels.items():
        own = [r for r in rows if (r["run_id"], r["cell"]) == key and r["ttft_ms"] is not None]
        if own:
            fig.data.append(_ecdf_trace(cell, own))
    fig.layout = _layout(420, "TTFT (ms)", "share of requests ≤ x",
                         yaxis=_axis("share of requests ≤ x", range=[0, 1.02]))
    return fig


def _ecdf_trace(cell: Cell, own: Sequence[Json]) -> Json:
    n, shown = int(own[0]["n"]), int(own[0]["n_sample"])
    size = f"n={n:,}" if shown == n else f"{shown:,} of n={n:,}"
    return {"type": "scatter", "mode": "lines+markers", "name": f"{cell.label} ({size})",
            "line": {"shape": "hv", "width": 2, "color": cell.color},
            "marker": {"size": 4, "color": cell.color}, "legendgroup": cell.label,
            # from 0 at the first TTFT, then one step up at each request's
            "x": [own[0]["ttft_ms"], *[r["ttft_ms"] for r in own]],
            "y": [0.0, *[r["k_ttft"] / shown for r in own]],
            "customdata": [[r["request_id"] or "–", r["iteration"]] for r in [own[0], *own]],
            "hovertemplate": _hover(cell, n, "TTFT %{x:.1f} ms · F %{y:.3f}<br>request "
                                    "%{customdata[0]} · iteration %{customdata[1]}")}


# ---------------------------------------------------------------- boxes


def boxes(rows: Sequence[Json], labels: dict[tuple[str, str], Cell], metric: str,
          name: str, unit: str) -> Figure:
    """Horizontal box plots of one metric (box p25–p75, line the median, whiskers p5–p95,
    dots min and max); the axis covers every whisker and extreme."""
    fig = Figure(f"{name} per cell", "Box: p25–p75, line: median, whiskers: p5–p95, dots: "
                 "min and max. n = successful measured requests.")
    for key, cell in reversed(labels.items()):
        row = next((r for r in rows if (r["run_id"], r["cell"], r["metric"]) == (*key, metric)),
                   None)
        if row is not None:
            fig.data += _box_traces(cell, row, unit)
    fig.layout = _layout(120 + 34 * len(fig.data) // 2, f"{name} ({unit})", showlegend=False)
    return fig


def _box_traces(cell: Cell, r: Json, unit: str) -> list[Json]:
    y = [f"{cell.label} · n={r['n']:,}"]
    box = {"type": "box", "orientation": "h", "y": y, "name": cell.label,
           "q1": [r["p25"]], "median": [r["p50"]], "q3": [r["p75"]],
           "lowerfence": [r["p5"]], "upperfence": [r["p95"]], "marker": {"color": cell.color},
           "line": {"color": cell.color}, "fillcolor": cell.color + "55", "hoverinfo": "skip",
           "legendgroup": cell.label}
    stats = " · ".join(f"{k} {r[k]:,.1f}" for k in ("p5", "p25", "p50", "p75", "p95"))
    ends = {"type": "scatter", "mode": "markers", "y": y * 3, "x": [r["lo"], r["p50"], r["hi"]],
            "marker": {"color": cell.color, "size": [5, 12, 5], "symbol":
                       ["circle-open", "line-ns", "circle-open"], "line": {"width": 2}},
            "legendgroup": cell.label, "name": cell.label,
            "hovertemplate": _hover(cell, int(r["n"]), f"{unit}: {stats}<br>min "
                                    f"{r['lo']:,.1f} · max {r['hi']:,.1f}")}
    return [box, ends]


# ---------------------------------------------------------------- budget


def budget(rows: Sequence[Json], labels: dict[tuple[str, str], Cell],
           phases: Sequence[str]) -> Figure:
    """The mean of each phase of a request (``PHASE_mean_ms`` of the budget rows), stacked
    per cell, values on the bars and the total at the end; every phase is in the legend,
    however small."""
    fig = Figure("Latency budget per cell (mean ms)", "The phases of a request add up to its "
                 "total (mean over successful measured requests; latlab budget).")
    by_key = {(r["run_id"], r["cell"]): r for r in rows}
    keys = [k for k in reversed(labels) if k in by_key]
    if not keys:
        return fig
    ys = [f"{labels[k].label} · n={by_key[k]['n']:,}" for k in keys]
    for phase, color in zip(phases, PHASE_COLORS, strict=False):
        xs = [max(float(by_key[k][f"{phase}_mean_ms"] or 0.0), 0.0) for k in keys]
        fig.data.append({"type": "bar", "orientation": "h", "name": phase, "x": xs, "y": ys,
                         "marker": {"color": color}, "text": [f"{x:,.0f}" for x in xs],
                         "textposition": "inside", "insidetextanchor": "middle",
                         "customdata": [[k[1], k[0]] for k in keys],
                         "hovertemplate": "<b>%{customdata[0]}</b><br>run %{customdata[1]} · "
                                          f"%{{y}}<br>{phase}: %{{x:,.1f}} ms<extra></extra>"})
    totals = [sum(bar["x"][i] for bar in fig.data) for i in range(len(keys))]
    fig.data.append({"type": "scatter", "mode": "text", "x": totals, "y": ys,
                     "text": [f" {t:,.0f} ms" for t in totals], "textposition": "middle right",
                     "showlegend": False, "hoverinfo": "skip"})
    fig.layout = _layout(140 + 40 * len(keys), "ms (mean)", barmode="stack",
                         uniformtext={"minsize": 10, "mode": "hide"},
                         legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom",
                                 "traceorder": "normal"})
    fig.layout["xaxis"]["range"] = [0, max(totals, default=1) * 1.15]
    return fig


# ---------------------------------------------------------------- over time


def over_time(rows: Sequence[Json], labels: dict[tuple[str, str], Cell]) -> Figure:
    """TTFT of the sampled requests by start time (above) and when each cell's requests
    started (below, one row per cell): the run's schedule, interleaved or not."""
    fig = Figure("TTFT over time and the run's schedule", "Above: TTFT by start (seconds "
                 "since the run's first measured request): drift shows as a trend. Below: "
                 "one tick per request start, a row per cell: interleaved cells share time.")
    for key, cell in labels.items():
        own = sorted((r for r in rows if (r["run_id"], r["cell"]) == key),
                     key=lambda r: float(r["start_s"]))
        if own:
            fig.data += _time_traces(cell, own)
    height = 380 + 22 * len(labels)
    share = min(0.45, (22 * len(labels) + 30) / height)
    fig.layout = _layout(height, "", "TTFT (ms)",
                         xaxis=_axis("", anchor="y", matches="x2", showticklabels=False),
                         xaxis2=_axis("seconds since the run started", anchor="y2"),
                         yaxis=_axis("TTFT (ms)", domain=[share + 0.06, 1]),
                         yaxis2=_axis("", domain=[0, share], showgrid=False,
                                      autorange="reversed"))
    return fig


def _time_traces(cell: Cell, own: Sequence[Json]) -> list[Json]:
    n = int(own[0]["n"])
    custom = [[r["request_id"] or "–", r["iteration"], r["worker"], r["concurrency"]]
              for r in own]
    hover = _hover(cell, n, "start %{x:.2f} s · TTFT %{customdata[4]} ms<br>request "
                   "%{customdata[0]} · iteration %{customdata[1]} · worker %{customdata[2]} "
                   "· concurrency %{customdata[3]}")
    custom = [[*c, "–" if r["ttft_ms"] is None else f"{r['ttft_ms']:.1f}"]
              for c, r in zip(custom, own, strict=True)]
    xs = [r["start_s"] for r in own]
    shown = f"{len(own):,}" if len(own) == n else f"{len(own):,} of {n:,}"
    points = {"type": "scatter", "mode": "markers", "x": xs, "y": [r["ttft_ms"] for r in own],
              "name": f"{cell.label} (n={shown})", "legendgroup": cell.label,
              "marker": {"color": cell.color, "size": 5, "opacity": 0.8},
              "customdata": custom, "hovertemplate": hover, "xaxis": "x", "yaxis": "y"}
    ticks = {**points, "y": [cell.label] * len(own), "showlegend": False, "xaxis": "x2",
             "yaxis": "y2", "marker": {"color": cell.color, "symbol": "line-ns-open",
                                       "size": 12, "line": {"width": 1.5}}}
    return [points, ticks]


# ---------------------------------------------------------------- history (report --since)

PERCENTILES = (("ttft_p50_ms", "p50", "solid"), ("ttft_p90_ms", "p90", "dash"),
               ("ttft_p99_ms", "p99", "dot"))


def percentiles(title: str, caption: str, rows: Sequence[Json], x: str,
                xtitle: str) -> Figure:
    """Each cell's TTFT p50, p90 and p99 (one colour per cell, a dash per percentile; the
    legend toggles a cell's three lines) against ``x`` (a time bucket, an hour of day)."""
    fig = Figure(title, caption)
    names = sorted({str(r["cell"]) for r in rows})
    labels = cells([("", name) for name in names])
    for name in names:
        own = [r for r in rows if r["cell"] == name]
        fig.data += [_percentile_trace(labels[("", name)], own, x, *p) for p in PERCENTILES]
    fig.layout = _layout(440, xtitle, "TTFT (ms)")
    return fig


def _percentile_trace(cell: Cell, own: Sequence[Json], x: str, column: str, name: str,
                      dash: str) -> Json:
    hover = (f"{escape(cell.cell)}<br>{name} %{{y:.1f}} ms at %{{x}}"
             "<br>n %{customdata}<extra></extra>")
    return {"type": "scatter", "mode": "lines+markers", "x": [r[x] for r in own],
            "y": [r[column] for r in own], "name": f"{cell.label} {name}",
            "legendgroup": cell.label, "customdata": [r["n"] for r in own],
            "line": {"color": cell.color, "dash": dash, "width": 1.5},
            "marker": {"color": cell.color, "size": 4}, "hovertemplate": hover}


# ---------------------------------------------------------------- comparisons


def intervals(title: str, rows: Sequence[Json]) -> Figure:
    """Each comparison's median difference (other − baseline) with its 95% bootstrap
    interval, coloured and labelled by its verdict; a line at no difference."""
    fig = Figure(title, "Point: difference of the medians; bar: its 95% bootstrap "
                 "confidence interval. An interval clear of 0 is a verdict (faster, slower).")
    ys = [f"{r['metric']}: {clip(str(r['other']), 24)} vs {clip(str(r['baseline']), 24)}"
          f" · n={r['n']}/{r['n_baseline']}" for r in rows]
    for verdict in dict.fromkeys(str(r["verdict"]) for r in rows):
        mine = [(y, r) for y, r in zip(ys, rows, strict=True) if str(r["verdict"]) == verdict]
        fig.data.append(_interval_trace(verdict, mine))
    fig.layout = _layout(130 + 44 * len(rows), "difference of the medians (other − baseline)",
                         shapes=[{"type": "line", "xref": "x", "yref": "paper", "x0": 0,
                                  "x1": 0, "y0": 0, "y1": 1, "line": {"color": "#444",
                                                                      "dash": "dot"}}],
                         legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"})
    fig.layout["yaxis"]["range"] = [-0.6, len(rows) - 0.3]  # room for the verdict words
    fig.layout["xaxis"]["range"] = _padded([0.0, *[float(r[k]) for r in rows
                                                   for k in ("ci95_low", "ci95_high")
                                                   if r[k] is not None]])
    return fig


def _padded(values: Sequence[float]) -> list[float]:
    """An axis range covering ``values`` with a margin of 8% on each side."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or 1.0
    return [lo - pad, hi + pad]


def _interval_trace(verdict: str, mine: Sequence[tuple[str, Json]]) -> Json:
    color = VERDICT_COLORS.get(verdict, "#bbbbbb")
    delta = [r["delta_p50"] for _, r in mine]
    high = [_gap(r["ci95_high"], r["delta_p50"]) for _, r in mine]
    low = [_gap(r["delta_p50"], r["ci95_low"]) for _, r in mine]
    return {"type": "scatter", "mode": "markers+text", "name": verdict,
            "x": delta, "y": [y for y, _ in mine], "text": [f"  {verdict}"] * len(mine),
            "textposition": "top center", "marker": {"color": color, "size": 11},
            "error_x": {"type": "data", "array": high, "arrayminus": low, "color": color,
                        "thickness": 2.5, "width": 8},
            "customdata": [[r["ci95_low"], r["ci95_high"], r["baseline_p50"], r["p50"]]
                           for _, r in mine],
            "hovertemplate": "%{y}<br>difference %{x:,.1f} · 95% CI [%{customdata[0]:,.1f}, "
                             "%{customdata[1]:,.1f}]<br>medians %{customdata[2]:,.1f} → "
                             f"%{{customdata[3]:,.1f}}<br>{verdict}<extra></extra>"}


def _gap(a: float | None, b: float | None) -> float:
    return 0.0 if a is None or b is None else max(float(a) - float(b), 0.0)


# ---------------------------------------------------------------- the script


def plotly_js() -> str:
    """plotly.js (minified), from the installed plotly package, to inline in the page."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        from latlab.runner.core.errors import ConfigError

        raise ConfigError("the HTML report needs plotly: pip install plotly")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
