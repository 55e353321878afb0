"""``latlab report --since 24h``: each cell's percentiles over time and by hour of day, and the
last window against the window before with the bootstrap comparison of ``latlab compare``
(analysis/55_bootstrap.sql). Views: analysis/85_history.sql."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from latlab.analysis import plots
from latlab.analysis.bootstrap import REPLICATES, Interval
from latlab.analysis.compare import verdict
from latlab.analysis.query import Rows, open_results, recent_run_ids, run_sql
from latlab.analysis.report import Report, as_json, html, markdown
from latlab.runner.core.durations import parse_duration
from latlab.runner.core.errors import ResultsError

BUCKETS = 24  # time-series rows per cell over the window


def _open(results_dir: Path, since_s: float, slo: Mapping[str, Any] | None
          ) -> duckdb.DuckDBPyConnection:
    ids = recent_run_ids(results_dir, 2 * since_s)
    if not ids:
        raise ResultsError(f"--since: no runs under {results_dir} in the last two windows")
    con = open_results(results_dir, ids, slo, needs=["history_buckets", "history_hour_of_day",
                                                     "history_comparison"])
    con.execute("SET VARIABLE latlab_since_s = ?", [since_s])
    con.execute("SET VARIABLE latlab_bucket_s = ?", [max(60.0, since_s / BUCKETS)])
    return con


def window_comparison(con: duckdb.DuckDBPyConnection, seed: int = 0) -> Rows:
    """Per cell: TTFT medians of the window before and the last window, the difference with
    its 95 % bootstrap interval (analysis/55_bootstrap.sql, as `latlab compare`), and the
    verdict."""
    con.execute("SET VARIABLE latlab_bootstrap_seed = ?", [seed])
    con.execute("SET VARIABLE latlab_bootstrap_replicates = ?", [REPLICATES])
    con.execute("INSERT INTO bootstrap_groups BY NAME SELECT * FROM history_groups")
    con.execute("INSERT INTO bootstrap_pairs BY NAME SELECT * FROM history_pairs")
    columns, rows = run_sql(con, "SELECT * FROM history_comparison ORDER BY cell")
    return [*columns, "verdict"], [
        (*row, _verdict(dict(zip(columns, row, strict=True)))) for row in rows]


def _verdict(row: dict[str, Any]) -> str:
    ci = Interval(row["ci_low_ms"], row["ci_high_ms"])
    return verdict("ttft_ms", ci, row["n_before"], row["n_last"])


def history_figures(since: str, buckets: Rows, hours: Rows) -> list[plots.Figure]:
    """The HTML report's plots: each cell's TTFT percentiles over time and by hour of day."""
    return [plots.percentiles(
                f"TTFT over the last {since}", "Each cell's TTFT p50 (solid), p90 (dashed) "
                "and p99 (dotted) of the successful requests per time bucket (UTC).",
                _dicts(buckets), "bucket", "time bucket (UTC)"),
            plots.percentiles(
                "TTFT by hour of day", f"The same percentiles by UTC hour of day over the "
                f"last {since}: a daily pattern shows as a shape repeated across cells.",
                _dicts(hours), "hour_utc", "hour of day (UTC)")]


def _dicts(rows: Rows) -> list[dict[str, Any]]:
    columns, values = rows
    return [dict(zip(columns, row, strict=True)) for row in values]


def history_command(results_dir: Path, since: str, slo: Mapping[str, Any] | None,
                    fmt: str, html_path: Path | None = None) -> str:
    """The history report over the last ``since``, rendered like ``latlab report``."""
    since_s = parse_duration(since, "--since")
    con = _open(results_dir, since_s, slo)
    buckets = run_sql(con, "SELECT * FROM history_buckets ORDER BY cell, bucket")
    hours = run_sql(con, "SELECT * FROM history_hour_of_day ORDER BY cell, hour_utc")
    report = Report([f"last {since} and the {since} before"], tables=[  # the verdicts first
        (f"Last {since} vs the {since} before (TTFT median, 95 % bootstrap CI)",
         window_comparison(con)),
        (f"TTFT over time (last {since}, UTC buckets)", buckets),
        ("By hour of day (UTC)", hours)], figures=history_figures(since, buckets, hours))
    if html_path is not None:
        html_path.write_text(html(report), encoding="utf-8")
    if fmt == "json":
        return as_json(report).rstrip()
    return (html(report) if fmt == "html" else markdown(report)).rstrip()
