"""What the ``latlab sql`` and ``latlab grade`` commands do; each returns the text to print."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from latlab.analysis.query import check_format, open_results, render, run_sql

GRADE_COLUMNS = (
    "run_id", "cell", "grade",
    "ttft_p50_ms", "ttft_p50_grade",
    "ttft_p99_ms", "ttft_p99_grade",
    "output_tps_mean", "output_tps_mean_grade",
    "error_rate", "error_rate_grade",
    "n",
)


def sql_command(query: str, results_dir: Path, run_ids: list[str] | None, fmt: str) -> str:
    """Run ``query`` against the views of ``results_dir`` (optionally some runs only)."""
    check_format(fmt)
    con = open_results(results_dir, run_ids, needs=query_needs(query))
    try:
        return render(run_sql(con, query), fmt)
    finally:
        con.close()


def query_needs(query: str) -> list[str] | None:
    """The words of ``query`` when one names a view: only the views they use are created
    (~0.2 s less at start-up); else (SHOW TABLES, information_schema, …) every view."""
    from latlab.analysis.query import view_names

    words = re.findall(r"\w+", query.lower())
    return words if set(words) & set(view_names()) else None


def grade_command(
    results_dir: Path,
    run_ids: list[str] | None,
    fmt: str,
    slo: Mapping[str, Any] | None = None,
    wide: bool = False,
) -> str:
    """One row per run x cell: overall grade and each SLO metric's value and grade.

    Without ``run_ids``, only the latest run is graded.
    """
    check_format(fmt)
    con = open_results(results_dir, run_ids, slo, needs=("grades", *LATEST_NEEDS))
    try:
        sql = f"SELECT {', '.join(GRADE_COLUMNS)} FROM grades"
        params: dict[str, Any] = {}
        if not run_ids:
            sql += " WHERE list_contains($ids, run_id)"
            params["ids"] = latest_run_ids(con, 1)
        rows = con.execute(sql + " ORDER BY run_id, cell", params).fetchall()
        if fmt == "table" and not wide:
            return render(compact_grades(rows), fmt)
        return render((list(GRADE_COLUMNS), rows), fmt)
    finally:
        con.close()


COMPACT_COLUMNS = ["cell", "grade", "TTFT p50", "TTFT p99", "tokens/s", "errors", "n"]


def _value_and_grade(value: Any, grade: Any, unit: str) -> str:
    if value is None:
        return f"- {grade or ''}".strip()
    shown = f"{value:.1%}" if unit == "%" else f"{value:.0f}{unit}"
    return f"{shown} {grade or ''}".strip()


def compact_grades(rows: list[tuple[Any, ...]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The grade table for a terminal: each metric as "value grade"; run id when several."""
    several = len({r[0] for r in rows}) > 1
    out = []
    for r in rows:
        cell = f"{r[0]} {r[1]}" if several else r[1]
        out.append((cell, r[2], _value_and_grade(r[3], r[4], " ms"),
                    _value_and_grade(r[5], r[6], " ms"), _value_and_grade(r[7], r[8], ""),
                    _value_and_grade(r[9], r[10], "%"), r[11]))
    return COMPACT_COLUMNS, out


LATEST_NEEDS = ("runs", "requests")  # the views latest_run_ids reads


def latest_run_ids(con: duckdb.DuckDBPyConnection, n: int) -> list[str]:
    """The ``n`` most recently started runs (by runs.started_at), newest first.

    If the runs table is empty, the largest run ids seen in requests instead.
    """
    rows = con.execute(
        "SELECT run_id FROM runs ORDER BY started_at DESC NULLS LAST, run_id DESC LIMIT ?", [n]
    ).fetchall()
    if not rows:
        rows = con.execute(
            "SELECT DISTINCT run_id FROM requests ORDER BY run_id DESC LIMIT ?", [n]
        ).fetchall()
    return [str(r[0]) for r in rows]


TOOL_TIMING_VIEWS = {
    "provider": ("SELECT run_id, provider, driver, task, model, sessions, failed_sessions, "
                 "total_mean_ms, model_mean_ms, tool_mean_ms, bash_mean_ms, cli_mean_ms, "
                 "mcp_mean_ms, file_mean_ms, other_tool_mean_ms, model_share, tool_share, "
                 "model_calls_mean, tool_calls_mean, bash_calls_mean, cli_calls_mean, "
                 "mcp_calls_mean, file_calls_mean FROM tool_timings "
                 "ORDER BY run_id, task, driver, provider, model"),
    "session": ("SELECT run_id, session_id, provider, driver, task, status, total_ms, model_ms, "
                "tool_ms, bash_ms, cli_ms, mcp_ms, file_ms, other_tool_ms, model_share, "
                "tool_share, turns, model_calls, tool_calls, bash_calls, cli_calls, mcp_calls, "
                "file_calls, errors FROM session_times ORDER BY run_id, started_at"),
    "delta": ("SELECT run_id, driver, task, provider_a, provider_b, sessions_a, sessions_b, "
              "total_a_ms, total_b_ms, total_delta_ms, model_delta_ms, tool_delta_ms, "
              "total_ratio FROM session_deltas ORDER BY run_id, task, provider_a, provider_b"),
    "cli": ("SELECT * FROM cli_vs_proxy ORDER BY run_id, session_id"),
    "endpoints": ("SELECT run_id, session_id, provider, task, method, endpoint, calls, errors, "
                  "total_ms, total_p50_ms, ttfb_p50_ms, request_bytes, response_bytes, models "
                  "FROM http_calls_by_endpoint ORDER BY run_id, session_id, calls DESC"),
}


def tool_timings_command(results_dir: Path, run_ids: list[str] | None, fmt: str,
                         by: str = "provider") -> str:
    """Model vs tool time of agent sessions: per provider (mean per session), per session,
    across providers (``delta``) or HTTP calls per session by endpoint (``endpoints``).
    Without ``run_ids``: the latest run."""
    check_format(fmt)
    sql, params = TOOL_TIMING_VIEWS[by], {}
    # its view, and what no_sessions and latest_run_ids read
    needs = [*(query_needs(sql) or ()), "session_times", *LATEST_NEEDS]
    con = open_results(results_dir, run_ids, needs=needs)
    try:
        if not run_ids:  # open_results selected the given runs; else only the latest
            sql = f"SELECT * FROM ({sql}) WHERE list_contains($ids, run_id)"
            params["ids"] = latest_run_ids(con, 1)
        columns, rows = run_sql_params(con, sql, params)
        if not rows and fmt == "table":
            return no_sessions(con, run_ids or params["ids"], by)
        return render((columns, rows), fmt)
    finally:
        con.close()


def no_sessions(con: duckdb.DuckDBPyConnection, run_ids: list[str], by: str) -> str:
    """The one line ``latlab tool-timings`` prints when it has no rows to show."""
    runs = ", ".join(run_ids)
    (sessions,) = con.execute("SELECT count(*) FROM session_times WHERE "
                              "list_contains($ids, run_id)", {"ids": run_ids}).fetchone() or (0,)
    if sessions:
        return f"no rows for --by {by} in run {runs} (sessions: {sessions}; see --by session)"
    return (f"no agent sessions in run {runs}: tool-timings reads the sessions of "
            "`latlab run workload=session` (or workload=claude_code, latlab proxy)")


def run_sql_params(con: duckdb.DuckDBPyConnection, sql: str,
                   params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = con.execute(sql, params)
    return [d[0] for d in cursor.description or []], cursor.fetchall()
