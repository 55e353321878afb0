"""``latlab report``: Markdown (terminal, pull request) and one self-contained HTML file
(inline CSS and SVG, no script, nothing fetched) over the views: run metadata, grades, the
budget, comparisons, advice, and plots — TTFT ECDF per cell, box plots of TTFT and total,
the budget as stacked bars, tokens/s, and TTFT over time.
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

from latlab.analysis import svg
from latlab.analysis.budget import PHASES
from latlab.analysis.commands import GRADE_COLUMNS, latest_run_ids
from latlab.analysis.compare import COLUMNS as COMPARE_COLUMNS
from latlab.analysis.compare import CompareOptions, comparison_rows
from latlab.analysis.query import Rows, _plain, open_results
from latlab.runner.core.errors import ConfigError, ResultsError

QUANTILES = [i / 100 for i in range(101)]
BOX_QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]
SCATTER_POINTS = 3000
RUN_COLUMNS = ["run_id", "started_at", "status", "experiment", "run_name", "host",
               "latlab_version", "cells", "requests", "errors"]
BUDGET_COLUMNS = ["run_id", "cell", "n", *[f"{p}_mean_ms" for p in PHASES], "total_mean_ms",
                  "server_mean_ms"]


@dataclass
class Report:
    """Every table and chart of one report, already computed."""

    runs: list[str]
    tables: list[tuple[str, Rows]] = field(default_factory=list)
    notes: list[tuple[str, list[str]]] = field(default_factory=list)
    charts: list[tuple[str, str, str]] = field(default_factory=list)  # title, svg, legend
    empty: bool = False


def _rows(con: duckdb.DuckDBPyConnection, sql: str, runs: list[str]) -> Rows:
    cur = con.execute(sql, {"runs": runs})
    return [d[0] for d in cur.description or []], cur.fetchall()


def _labels(runs: list[str]) -> str:
    """SQL for a readable label per (run, cell): the cell, prefixed by the run when several."""
    return "cell" if len(runs) == 1 else "run_id || ' ' || cell"


def gather(con: duckdb.DuckDBPyConnection, runs: list[str]) -> Report:
    report = Report(runs)
    where = "WHERE list_contains($runs, run_id)"
    report.tables.append(("Runs", _rows(
        con, f"SELECT {', '.join(RUN_COLUMNS)} FROM runs {where} ORDER BY started_at", runs)))
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
    advice = con.execute(f"SELECT concat(rule, ': ', advice, ' — ', cell, ': ', evidence) "
                         f"FROM advice {where} ORDER BY rule, cell", {"runs": runs}).fetchall()
    report.notes.append(("Advice", [str(a[0]) for a in advice]))
    report.charts = charts(con, runs)
    return report


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


# ---------------------------------------------------------------- charts


def charts(con: duckdb.DuckDBPyConnection, runs: list[str]) -> list[tuple[str, str, str]]:
    label = _labels(runs)
    return [_ecdf(con, runs, label), _boxes(con, runs, label, "ttft_ms", "TTFT"),
            _boxes(con, runs, label, "total_ms", "Total latency"), _budget_bars(con, runs, label),
            _boxes(con, runs, label, "output_tps", "Output tokens/s", "tokens/s"),
            _over_time(con, runs, label)]


def _ecdf(con: duckdb.DuckDBPyConnection, runs: list[str], label: str) -> tuple[str, str, str]:
    rows = con.execute(f"SELECT {label}, quantile_cont(ttft_ms, $q) FROM measured_ok "
                       "WHERE list_contains($runs, run_id) AND ttft_ms IS NOT NULL "
                       "GROUP BY ALL ORDER BY 1", {"runs": runs, "q": QUANTILES}).fetchall()
    series = [(str(name), [(float(x), q) for x, q in zip(xs, QUANTILES, strict=True)])
              for name, xs in rows]
    title = "TTFT ECDF per cell"
    chart = svg.line_chart(title, series, "TTFT (ms)", "share of requests ≤ x", step=True)
    return title, chart, svg.legend([s[0] for s in series])


def _boxes(con: duckdb.DuckDBPyConnection, runs: list[str], label: str, column: str,
           name: str, unit: str = "ms") -> tuple[str, str, str]:
    rows = con.execute(f"SELECT {label}, quantile_cont({column}, $q) FROM measured_ok "
                       f"WHERE list_contains($runs, run_id) AND {column} IS NOT NULL "
                       "GROUP BY ALL ORDER BY 1", {"runs": runs, "q": BOX_QUANTILES}).fetchall()
    boxes = [(str(n), [float(v) for v in qs]) for n, qs in rows]
    title = f"{name} per cell (box: p25–p75, line: median, whiskers: p5–p95)"
    chart = svg.box_chart(title, boxes, f"{name} ({unit})")
    return title, chart, svg.legend([f"{i + 1}. {b[0]}" for i, b in enumerate(boxes)])


def _budget_bars(con: duckdb.DuckDBPyConnection, runs: list[str], label: str
                 ) -> tuple[str, str, str]:
    rows = con.execute(f"SELECT {label}, list(phase ORDER BY phase_order), "
                       "list(mean_ms ORDER BY phase_order) FROM budget_phases "
                       "WHERE list_contains($runs, run_id) GROUP BY ALL ORDER BY 1",
                       {"runs": runs}).fetchall()
    bars = [(str(n), list(zip(phases, [float(v) for v in means], strict=True)))
            for n, phases, means in rows]
    title = "Latency budget per cell (mean ms)"
    chart = svg.stacked_bars(title, bars, "ms")
    cells = "".join(f"<li>{escape(b[0])}</li>" for b in bars)
    return title, chart, svg.legend(list(PHASES)) + f'<ol class="cells">{cells}</ol>'


def _over_time(con: duckdb.DuckDBPyConnection, runs: list[str], label: str
               ) -> tuple[str, str, str]:
    rows = con.execute(
        f"SELECT {label}, list([s, ttft_ms] ORDER BY s) FROM ("
        f"  SELECT *, epoch_ms(started_at) / 1000.0 - epoch_ms(min(started_at) OVER "
        "   (PARTITION BY run_id)) / 1000.0 AS s FROM measured_ok "
        "  WHERE list_contains($runs, run_id) AND ttft_ms IS NOT NULL"
        f"  USING SAMPLE reservoir({SCATTER_POINTS} ROWS) REPEATABLE (7)) GROUP BY ALL "
        "ORDER BY 1", {"runs": runs}).fetchall()
    series = [(str(n), [(float(p[0]), float(p[1])) for p in pts]) for n, pts in rows]
    title = "TTFT over time (drift): seconds since the run started"
    chart = svg.line_chart(title, series, "seconds since start", "TTFT (ms)", points=True)
    return title, chart, svg.legend([s[0] for s in series])


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


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:12px;margin-bottom:18px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.legend{font-size:12px;margin:4px 0 18px}
.key{margin-right:14px;white-space:nowrap}.key i{display:inline-block;width:10px;
height:10px;margin-right:4px}.warn{color:#a00;font-weight:bold}ol.cells{font-size:12px}
figure{margin:0 0 8px}"""


def html(report: Report) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>latlab report</h1><p>runs {escape(', '.join(report.runs))} · "
            f"generated {stamp}</p>"]
    if report.empty:
        body.append('<p class="warn">No successful measured requests in these runs: every '
                    "statistic is empty (see the grades: error rate).</p>")
    (runs_title, runs), *tables = report.tables
    body.append(f"<h2>{escape(runs_title)}</h2>" + _html_table(*runs))
    body.append("<h2>Plots</h2>")
    for _, chart, legend in report.charts:
        body.append(f"<figure>{chart}</figure>{legend}")
    for title, (columns, rows) in tables:
        body.append(f"<h2>{escape(title)}</h2>" + _html_table(columns, rows))
    for title, lines in report.notes:
        items = "".join(f"<li>{escape(line)}</li>" for line in lines) or "<li>(none)</li>"
        body.append(f"<h2>{escape(title)}</h2><ul>{items}</ul>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>latlab report</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _html_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
    con = open_results(results_dir, runs, slo)
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
    con = open_results(results_dir)
    try:
        return latest_run_ids(con, n)
    finally:
        con.close()


def _write(path: Path, text: str, option: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"{option}: cannot write {path}: {exc.strerror}") from exc
