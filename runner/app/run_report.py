"""What ``latlab run`` prints when a run ends: where the rows are, and the run's grades."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latlab.runner.app.run import RunSummary


def print_run_end(summary: RunSummary, slo: Mapping[str, Any]) -> None:
    """The run id, counts, results location and the grade table (stdout)."""
    from latlab.analysis.commands import grade_command

    print(headline(summary))  # noqa: T201
    print(grade_command(summary.results_dir, [summary.run_id], "table", slo))  # noqa: T201
    print_provider_overhead(summary)


def headline(summary: RunSummary) -> str:
    """The run's counts and where its rows are; for agent sessions, sessions and their model
    calls (the grade table's n counts model calls)."""
    where = summary.results_dir / "requests" / summary.run_id
    if not summary.sessions:
        return f"run {summary.run_id}: {summary.requests} requests, {summary.errors} errors " \
            f"-> {where}"
    calls, failed = model_calls(summary)
    return (f"run {summary.run_id}: {summary.requests} sessions ({summary.errors} failed), "
            f"{calls} measured model calls ({failed} errors) -> {where}\n"
            "grades per model call (n = model calls); per session: latlab tool-timings")


def model_calls(summary: RunSummary) -> tuple[int, int]:
    """Measured model calls of the run and how many of them failed."""
    from latlab.analysis.query import open_results

    con = open_results(summary.results_dir, [summary.run_id], needs=("measured",))
    try:
        row = con.execute("SELECT count(*), count(error_type) FROM measured").fetchone()
    finally:
        con.close()
    return (int(row[0]), int(row[1])) if row else (0, 0)


OVERHEAD_SQL = """
SELECT cell, n, ttft_p50_ms, ttft_p50_delta_ms, ttft_p50_delta_pct, total_p50_delta_ms,
       total_mean_delta_ms, server_latency_mean_ms, server_share, overhead_server_share
FROM provider_overhead WHERE run_id = ? ORDER BY model, prompt, stream, cell
"""


def print_provider_overhead(summary: RunSummary) -> None:
    """The overhead table (analysis/30_overhead.sql) when the run had a direct and an
    indirect (e.g. Bedrock) cell to compare; nothing otherwise."""
    from latlab.analysis.query import open_results, render

    if not summary.requests:
        return
    con = open_results(summary.results_dir, [summary.run_id], needs=("provider_overhead",))
    try:
        cursor = con.execute(OVERHEAD_SQL, [summary.run_id])
        columns, rows = [d[0] for d in cursor.description or []], cursor.fetchall()
    finally:
        con.close()
    if rows:
        print("\noverhead vs the direct Anthropic API (provider_overhead):")  # noqa: T201
        print(render((columns, rows), "table"))  # noqa: T201
