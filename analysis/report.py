"""``latlab report``: Markdown (terminal, pull request) and one self-contained HTML file
(plotly.js inlined, nothing fetched) over the views: run metadata, cells, grades, the budget,
comparisons, advice, and interactive plots — TTFT ECDF per cell, box plots of TTFT, total
and tokens/s, the budget as stacked bars, TTFT over time with the run's schedule, and each
comparison's difference with its bootstrap interval.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import duckdb

from latlab.analysis import plots
from latlab.analysis.budget import PHASES
from latlab.analysis.commands import GRADE_COLUMNS, LATEST_NEEDS, latest_run_ids
from latlab.analysis.compare import COLUMNS as COMPARE_COLUMNS
from latlab.analysis.compare import NEEDS as COMPARE_NEEDS
from latlab.analysis.compare import CompareOptions, comparison_rows
from latlab.analysis.query import Rows, _plain, materialize, open_results
from latlab.analysis.readable import header, number
from latlab.runner.core.errors import ConfigError, ResultsError

Json = dict[str, Any]
RUN_COLUMNS = ["run_id", "started_at", "status", "experiment", "run_name", "host",
               "latlab_version", "cells", "requests", "errors"]
CELL_COLUMNS = ["run_id", "cell", "concurrency", "n", "ok", "errors", "ttft_p50_ms",
                "ttft_p95_ms", "total_p50_ms", "total_p95_ms", "output_tps_mean"]
BUDGET_COLUMNS = ["run_id", "cell", "n", *[f"{p}_mean_ms" for p in PHASES], "total_mean_ms",
                  "server_mean_ms"]
NEEDS = ("runs", "run_order", "cell_summary", "grades", "budget", "budget_delta", "advice",
         "report_boxes", "report_sample", "replay_calls", "replay_sessions",
         *COMPARE_NEEDS)  # the views a report reads
REPLAY_SESSION_COLUMNS = ["run_id", "cell", "provider", "session_id", "calls", "errors",
                          "model_ms", "between_calls_ms", "wall_ms"]
REPLAY_CALL_COLUMNS = ["session_id", "turn", "provider", "ttft_ms", "total_ms", "send_delay_ms",
                       "elapsed_ms", "error_type"]
# per-cell views several parts of the report read, computed once per report; of
# cell_summary, the columns its readers here use (grades, advice, the Cells table): the
# quantiles of TTFB, generation and tokens/s are not computed (three sorts of every row)
SHARED_VIEWS = {
    "cell_summary": "run_id, cell, provider, api, model, model_id, prompt, guardrail, stream, "
                    "concurrency, n, ok, errors, error_rate, ttft_p50_ms, ttft_p95_ms, "
                    "ttft_p99_ms, total_p50_ms, total_p95_ms, output_tps_mean",
    "cell_pairs": "*",
}


@dataclass
class Report:
    """Every table and plot of one report, already computed."""

    runs: list[str]
    tables: list[tuple[str, Rows]] = field(default_factory=list)
    notes: list[tuple[str, list[str]]] = field(default_factory=list)
    figures: list[plots.Figure] = field(default_factory=list)
    empty: bool = False


def _rows(con: duckdb.DuckDBPyConnection, sql: str, runs: list[str]) -> Rows:
    cur = con.execute(sql, {"runs": runs})
    return [d[0] for d in cur.description or []], cur.fetchall()


def gather(con: duckdb.DuckDBPyConnection, runs: list[str]) -> Report:
    report = Report(runs)
    materialize(con, SHARED_VIEWS)
    where = "WHERE list_contains($runs, run_id)"
    report.tables.append(("Runs", _rows(
        con, f"SELECT {', '.join(RUN_COLUMNS)} FROM runs {where} ORDER BY started_at", runs)))
    report.tables.append(("Cells (n: measured requests, ok: successful)", _rows(
        con, f"SELECT {', '.join(CELL_COLUMNS)} FROM cell_summary {where} ORDER BY run_id, "
        "cell", runs)))
    report.tables.append(("Grades", _rows(
        con, f"SELECT {', '.join(GRADE_COLUMNS)} FROM grades {where} ORDER BY run_id, cell",
        runs)))
    report.tables.append(("Budget (mean ms; phases add up to the total)", _rows(
        con, f"SELECT {', '.join(BUDGET_COLUMNS)} FROM budget {where} ORDER BY run_id, cell",
        runs)))
    ok = con.execute(f"SELECT count(*) FROM measured_ok {where}", {"runs": runs}).fetchone()
    report.empty = ok == (0,)
    deltas = con.execute(f"SELECT concat(summary, '  [', axis, ': ', baseline_cell, ' -> ', "
                         f"cell, ']') FROM budget_delta {where} ORDER BY run_id, axis, cell",
                         {"runs": runs}).fetchall()
    report.notes.append(("What each axis adds (budget_delta)", [str(d[0]) for d in deltas]))
    _comparisons(con, runs, report)
    _replayed_sessions(con, runs, report)
    advice = con.execute(f"SELECT concat(rule, ': ', advice, ' — ', cell, ': ', evidence) "
                         f"FROM advice {where} ORDER BY rule, cell", {"runs": runs}).fetchall()
    report.notes.append(("Advice", [str(a[0]) for a in advice]))
    columns, rows = next(t for title, t in report.tables if title.startswith("Budget"))
    budget = [dict(zip(columns, r, strict=True)) for r in rows]
    report.figures = figures(con, runs, budget) + report.figures
    return report


def _replayed_sessions(con: duckdb.DuckDBPyConnection, runs: list[str], report: Report) -> None:
    """Recorded sessions replayed (workload=replay of a `latlab trace export`): where each
    session's time went on each provider, then call by call (views replay_sessions and
    replay_calls, analysis/45_traffic.sql)."""
    where = "WHERE list_contains($runs, run_id)"
    sessions = _rows(con, f"SELECT {', '.join(REPLAY_SESSION_COLUMNS)} FROM replay_sessions "
                     f"{where} ORDER BY session_id, provider, run_id", runs)
    if not sessions[1]:
        return
    report.tables.append(("Replayed sessions: model time vs the recorded gaps between calls",
                          sessions))
    report.tables.append(("Replayed sessions, call by call (elapsed: from the session's first "
                          "send to this call's end)", _rows(
        con, f"SELECT {', '.join(REPLAY_CALL_COLUMNS)} FROM replay_calls {where} "
        "ORDER BY session_id, turn, provider, run_id", runs)))


def _comparisons(con: duckdb.DuckDBPyConnection, runs: list[str], report: Report) -> None:
    opts = CompareOptions(metrics=("ttft_ms", "total_ms"))
    kinds = ["run"] if len(runs) > 1 else []
    kinds += [r[0] for r in con.execute("SELECT DISTINCT axis FROM cell_pairs WHERE "
                                        "list_contains($runs, run_id) ORDER BY axis",
                                        {"runs": runs}).fetchall()]
    for kind in kinds:
        rows = comparison_rows(con, kind, opts)
        if rows:
            title = "Runs compared" if kind == "run" else f"Cells compared by {kind}"
            report.tables.append((f"{title} (95% bootstrap CI of the median difference)",
                                  (COMPARE_COLUMNS, rows)))
            dicts = [dict(zip(COMPARE_COLUMNS, r, strict=True)) for r in rows]
            report.figures.append(plots.intervals(title, dicts))


# ---------------------------------------------------------------- plots

SAMPLE_PER_CELL = 400  # requests per cell in the ECDF and over-time plots (all when fewer)
BOX_METRICS = (("ttft_ms", "TTFT", "ms"), ("total_ms", "Total latency", "ms"),
               ("output_tps", "Output speed", "tokens/s"))


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[Json]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def figures(con: duckdb.DuckDBPyConnection, runs: list[str], budget: Sequence[Json] = (),
            per_cell: int = SAMPLE_PER_CELL) -> list[plots.Figure]:
    """The report's plots, from per-cell statistics (``budget``: rows of BUDGET_COLUMNS) and
    a bounded sample of requests."""
    where = {"runs": runs}
    keys = [(str(r), str(c)) for r, c in con.execute(
        "SELECT run_id, cell FROM cell_summary WHERE list_contains($runs, run_id) "
        "ORDER BY list_position($runs, run_id), cell", where).fetchall()]
    labels = plots.cells(keys)
    sample = _dicts(con, "SELECT * FROM report_sample($k) WHERE list_contains($runs, run_id) "
                    "ORDER BY run_id, cell, k_ttft", {**where, "k": per_cell})
    box = _dicts(con, "SELECT * FROM report_boxes WHERE list_contains($runs, run_id)", where)
    return [plots.ecdf(sample, labels),
            *[plots.boxes(box, labels, *m) for m in BOX_METRICS],
            plots.budget(budget, labels, PHASES), plots.over_time(sample, labels)]


# ---------------------------------------------------------------- output


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def markdown(report: Report) -> str:
    out = [f"# latlab report: {', '.join(report.runs)}", ""]
    if report.empty:
        out += ["**No successful measured requests in these runs: every statistic is empty "
                "(see the grades: error rate).**", ""]
    for title, (columns, rows) in report.tables:
        out += [f"## {title}", ""]
        if not rows:
            out += ["(none)", ""]
            continue
        out.append("| " + " | ".join(columns) + " |")
        out.append("|" + "---|" * len(columns))
        out += ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in r) + " |" for r in rows]
        out.append("")
    for title, lines in report.notes:
        out += [f"## {title}", ""] + ([f"- {line}" for line in lines] or ["(none)"]) + [""]
    return "\n".join(out).rstrip() + "\n"


CSS = """body{font-family:system-ui,sans-serif;margin:24px auto;color:#222;max-width:1400px;
padding:0 16px}h1{margin-bottom:4px}h2{margin:28px 0 8px;font-size:18px}
.wrap{overflow-x:auto;margin-bottom:12px}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f3f3f3;font-weight:600;vertical-align:bottom}
td.text,td.name{text-align:left;white-space:nowrap}th.text{text-align:left}
.warn{color:#a00;font-weight:bold}figure{margin:0 0 20px;border:1px solid #eee;padding:8px}
figcaption{font-size:13px;color:#555;margin:2px 0 6px}figcaption b{font-size:15px;color:#222}
.plot{width:100%}.nodata{color:#888;font-size:13px}"""
NAME_COLUMNS = {"cell", "baseline", "other"}  # long names: on one line (headers wrap instead)
SCRIPT = """const figures = JSON.parse(document.getElementById('figures').textContent);
const config = {responsive: true, displaylogo: false, scrollZoom: false};
figures.forEach((f, i) => Plotly.newPlot('plot-' + i, f.data, f.layout, config));"""


def html(report: Report) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>latlab report</h1><p>runs {escape(', '.join(report.runs))} · "
            f"generated {stamp} · hover a point for its request, drag to zoom (double-click "
            "resets), click a legend entry to hide a cell</p>"]
    if report.empty:
        body.append('<p class="warn">No successful measured requests in these runs: every '
                    "statistic is empty (see the grades: error rate).</p>")
    (runs_title, runs), *tables = report.tables
    body.append(f"<h2>{escape(runs_title)}</h2>" + _html_table(*runs))
    body.append("<h2>Plots</h2>")
    body += [_figure(i, f) for i, f in enumerate(report.figures)]
    for title, (columns, rows) in tables:
        body.append(f"<h2>{escape(title)}</h2>" + _html_table(columns, rows))
    for title, lines in report.notes:
        items = "".join(f"<li>{escape(line)}</li>" for line in lines) or "<li>(none)</li>"
        body.append(f"<h2>{escape(title)}</h2><ul>{items}</ul>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>latlab report</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n" + _scripts(report.figures) + "\n</body></html>\n")


def _figure(i: int, fig: plots.Figure) -> str:
    caption = f"<figcaption><b>{escape(fig.title)}</b><br>{escape(fig.caption)}</figcaption>"
    if not fig.data:
        return f'<figure>{caption}<p class="nodata">no data</p></figure>'
    return f'<figure>{caption}<div class="plot" id="plot-{i}"></div></figure>'


def _scripts(figures: list[plots.Figure]) -> str:
    """plotly.js and the figures' JSON (``</`` escaped: no data can close the script)."""
    drawn = [f.spec() if f.data else {"data": [], "layout": {}} for f in figures]
    try:  # plain floats and strings: fast; JSON has no NaN, so any NaN takes _plain (null)
        data = json.dumps(drawn, allow_nan=False, default=_plain)
    except ValueError:
        data = json.dumps(_plain(drawn), allow_nan=False)
    data = data.replace("</", "<\\/")
    if not any(f.data for f in figures):
        return ""
    return (f"<script>{plots.plotly_js()}</script>\n"
            f'<script type="application/json" id="figures">{data}</script>\n'
            f"<script>{SCRIPT}</script>")


def _html_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    numeric = [any(_is_number(r[i]) for r in rows) for i in range(len(columns))]
    kinds = ["" if num else ' class="text"' for num in numeric]
    head = "".join(f'<th title="{escape(c)}"{kind}>{escape(header(c))}</th>'
                   for c, kind in zip(columns, kinds, strict=True))
    body = "".join("<tr>" + "".join(_td(c, v) for c, v in zip(columns, r, strict=True))
                   + "</tr>" for r in rows)
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>' \
        "</table></div>"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _td(column: str, value: Any) -> str:
    if column in NAME_COLUMNS and isinstance(value, str):
        return f'<td class="name">{escape(value)}</td>'
    if _is_number(value):
        return f"<td>{escape(number(value))}</td>"
    return f'<td class="text">{escape(_cell(value))}</td>'


REPORT_FORMATS = ("markdown", "html", "json")


def as_json(report: Report) -> str:
    """The report's tables (lists of objects) and notes, without the plots."""
    tables = {title: [dict(zip(columns, (_plain(v) for v in row), strict=True))
                      for row in rows] for title, (columns, rows) in report.tables}
    return json.dumps({"runs": report.runs, "empty": report.empty, "tables": tables,
                       "notes": dict(report.notes)}, indent=2, default=str)


def report_command(results_dir: Path, run_ids: Sequence[str] | None, latest: int | None,
                   html_path: Path | None, md_path: Path | None,
                   slo: Mapping[str, Any] | None = None, fmt: str = "markdown") -> str:
    """The report to print in ``fmt`` (markdown, html or json), or a note when written to
    ``md_path``; HTML also to ``html_path``."""
    if fmt not in REPORT_FORMATS:
        raise ConfigError(f"--format: unknown report format {fmt!r}; use one of "
                          f"{', '.join(REPORT_FORMATS)}")
    if latest is not None and (latest < 1 or run_ids):
        raise ConfigError("--latest: a number >= 1, and not together with run ids")
    runs = list(run_ids) if run_ids else _latest(results_dir, latest or 1)
    con = open_results(results_dir, runs, slo, needs=NEEDS)
    try:
        runs = [str(r[0]) for r in con.execute(
            "SELECT run_id FROM run_order ORDER BY ord").fetchall()]
        report = gather(con, runs)
    finally:
        con.close()
    notes = []
    if html_path is not None:
        _write(html_path, html(report), "--html")
        notes.append(f"HTML report -> {html_path}")
    text = markdown(report)
    if md_path is not None:
        _write(md_path, text, "--markdown")
        return "\n".join([f"Markdown report -> {md_path}", *notes])
    if fmt != "markdown":  # the page or the JSON alone on stdout, for a pipe
        return (html(report) if fmt == "html" else as_json(report)).rstrip()
    return "\n".join([text.rstrip(), *notes])


def _latest(results_dir: Path, n: int) -> list[str]:
    con = open_results(results_dir, needs=LATEST_NEEDS)
    try:
        return latest_run_ids(con, n)
    finally:
        con.close()


def _write(path: Path, text: str, option: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"{option}: cannot write {path}: {exc.strerror}") from exc
