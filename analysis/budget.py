"""``latlab budget``: where every millisecond goes (views budget, budget_delta in
analysis/40_budget.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from latlab.analysis.query import check_format, open_results, render

PHASES = ("connect", "headers", "first_token", "generation", "tail")
STATS = ("mean", "p50")
NEEDS = ("budget", "budget_delta", "runs", "requests")  # the views this command reads
DELTA_COLUMNS = ["run_id", "axis", "baseline_cell", "cell", "connect_delta_ms",
                 "headers_delta_ms", "first_token_delta_ms", "generation_delta_ms",
                 "tail_delta_ms", "total_delta_ms", "total_delta_pct", "server_delta_ms",
                 "summary"]


def budget_columns(stat: str) -> list[str]:
    phases = [f"{p}_{stat}_ms" for p in PHASES]
    return ["run_id", "cell", "n", "new_connections", "connect_new_mean_ms", *phases,
            f"total_{stat}_ms", f"server_{stat}_ms", f"outside_server_{stat}_ms"]


def selected_runs(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str] | None) -> list[str]:
    """The given runs (already selected when opening), else the latest one."""
    from latlab.analysis.commands import latest_run_ids

    if run_ids:
        return [r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()] or \
            [r[0] for r in con.execute("SELECT DISTINCT run_id FROM requests").fetchall()]
    return latest_run_ids(con, 1)


def budget_rows(con: duckdb.DuckDBPyConnection, runs: list[str], stat: str, deltas: bool
                ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The budget (or, with ``deltas``, the budget_delta) rows of ``runs``."""
    columns = DELTA_COLUMNS if deltas else budget_columns(stat)
    view = "budget_delta" if deltas else "budget"
    order = "run_id, axis, baseline_cell, cell" if deltas else "run_id, cell"
    rows = con.execute(f"SELECT {', '.join(columns)} FROM {view} "
                       f"WHERE list_contains($runs, run_id) ORDER BY {order}",
                       {"runs": runs}).fetchall()
    return columns, rows


def compact_budget(columns: list[str], rows: list[tuple[Any, ...]]
                   ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The budget for a terminal (fits 100 columns): cells by the parts of their names that
    differ, each phase, the total and the provider's own time, in whole ms; every column:
    --wide, --format csv|json."""
    from latlab.analysis.readable import short_name

    stat = columns[5].split("_")[-2]  # connect_<stat>_ms
    keep = ["n", *[f"{p}_{stat}_ms" for p in PHASES], f"total_{stat}_ms", f"server_{stat}_ms"]
    at = [columns.index(k) for k in keep]
    names = [str(r[1]) for r in rows]
    several = len({r[0] for r in rows}) > 1
    out = [((f"{r[0]} " if several else "") + short_name(str(r[1]), names),
            *[v if v is None or i == at[0] else round(v) for i, v in ((i, r[i]) for i in at)])
           for r in rows]
    return ["cell", "n", *PHASES, "total", "server"], out


def budget_command(results_dir: Path, run_ids: Sequence[str] | None, fmt: str,
                   stat: str = "mean", deltas: bool = False, wide: bool = False) -> str:
    """The budget per cell; in a table, followed by one sentence per one-axis delta."""
    check_format(fmt)
    if stat not in STATS:
        from latlab.runner.core.errors import ConfigError

        raise ConfigError(f"--stat: unknown statistic {stat!r}; use {', '.join(STATS)}")
    con = open_results(results_dir, run_ids, needs=NEEDS)
    try:
        runs = selected_runs(con, run_ids)
        columns, rows = budget_rows(con, runs, stat, deltas)
        if not rows:
            return _empty_message(con, runs, deltas)
        if fmt == "table" and not (deltas or wide):
            return _budget_heading(rows, stat) + render(compact_budget(columns, rows), fmt) \
                + _delta_sentences(con, runs)
        text = render((columns, rows), fmt)
        if fmt == "table" and not deltas:
            text += _delta_sentences(con, runs)
        return text
    finally:
        con.close()


def _budget_heading(rows: list[tuple[Any, ...]], stat: str) -> str:
    from latlab.analysis.readable import shared_parts

    cells = shared_parts([str(r[1]) for r in rows])
    named = f" of {cells}" if "…" in cells else ""
    return f"{stat} ms per phase{named} (every column: --wide)\n"


def _delta_sentences(con: duckdb.DuckDBPyConnection, runs: list[str]) -> str:
    rows = con.execute("SELECT axis, baseline_cell, cell, summary FROM budget_delta "
                       "WHERE list_contains($runs, run_id) ORDER BY run_id, axis, cell",
                       {"runs": runs}).fetchall()
    if not rows:
        return ""
    from latlab.analysis.readable import short_name

    names = [str(n) for r in rows for n in r[1:3]]
    lines = [f"- {summary}  [{axis}: {short_name(base, names)} -> {short_name(cell, names)}]"
             for axis, base, cell, summary in rows]
    return "\n\nCells that differ in one axis (mean ms):\n" + "\n".join(lines)


def _empty_message(con: duckdb.DuckDBPyConnection, runs: list[str], deltas: bool) -> str:
    if deltas and con.execute("SELECT count(*) FROM budget WHERE list_contains($r, run_id)",
                              {"r": runs}).fetchone() != (0,):
        return "no two cells of the run differ in exactly one axis: no deltas to show"
    return (f"no successful measured requests in run {', '.join(runs) or '(none)'}: "
            "nothing to budget")
