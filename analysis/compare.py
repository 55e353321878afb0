"""``latlab compare``: the `comparison` view (analysis/50_comparison.sql) plus a 95%
bootstrap confidence interval of each median difference and an honest verdict.

Verdict: ``faster`` / ``slower`` when the interval excludes 0, ``within noise`` when it
holds 0, ``too few requests`` when either side has fewer than MIN_N values (then the
interval is shown but not trusted). When the interval is wider than the difference worth
resolving (``detect`` × the baseline median), ``needed_per_cell`` says how many requests
per cell would narrow it that far.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from latlab.analysis.bootstrap import REPLICATES, Interval, needed_per_cell
from latlab.analysis.query import check_format, open_results, render
from latlab.analysis.summaries import NEEDS as SUMMARY_NEEDS
from latlab.analysis.summaries import TABLE as SUMMARIES
from latlab.analysis.summaries import load_summaries
from latlab.runner.core.errors import ConfigError

MIN_N = 10
NEEDS = ("comparison", "bootstrap_intervals", "cell_pairs", "metric_samples",
         *SUMMARY_NEEDS)  # the views compare reads
METRICS = ("ttft_ms", "total_ms", "ttfb_ms", "output_tps")
DEFAULT_METRICS = ("ttft_ms", "total_ms", "output_tps")
HIGHER_IS_BETTER = {"output_tps"}
AXES = ("provider", "model", "prompt", "guardrail", "stream")
COLUMNS = ["cell", "baseline", "other", "metric", "n_baseline", "n", "baseline_p50", "p50",
           "delta_p50", "ratio_p50", "ci95_low", "ci95_high", "verdict", "needed_per_cell"]

@dataclass(frozen=True)
class CompareOptions:
    metrics: Sequence[str] = DEFAULT_METRICS
    detect: float = 0.05  # the difference worth resolving, as a share of the baseline median
    seed: int = 0
    replicates: int = REPLICATES


def verdict(metric: str, ci: Interval, n_baseline: int, n: int) -> str:
    """faster / slower / within noise, or too few requests when a side has < MIN_N."""
    if min(n_baseline, n) < MIN_N:
        return f"too few requests (< {MIN_N})"
    if ci.low <= 0 <= ci.high:
        return "within noise"
    worse = ci.low > 0
    if metric in HIGHER_IS_BETTER:
        worse = not worse
    return "slower" if worse else "faster"


def intervals(con: duckdb.DuckDBPyConnection, opts: CompareOptions
              ) -> dict[int, tuple[Interval, bool]]:
    """The bootstrap_intervals view (analysis/55_bootstrap.sql) over the filled
    bootstrap_pairs and bootstrap_groups: pair -> (interval, covered)."""
    con.execute("SET VARIABLE latlab_bootstrap_seed = ?", [opts.seed])
    con.execute("SET VARIABLE latlab_bootstrap_replicates = ?", [opts.replicates])
    rows = con.execute("SELECT pair, ci_low, ci_high, covered FROM bootstrap_intervals")
    return {pair: (Interval(_number(low), _number(high)), bool(covered))
            for pair, low, high, covered in rows.fetchall()}


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)  # None: a band missed every draw


def bootstrap_pairs(con: duckdb.DuckDBPyConnection, opts: CompareOptions
                    ) -> dict[int, Interval]:
    """The interval of every pair of the table ``compared``, from the summaries' bands;
    groups whose band misses a drawn position (a draw beyond six standard deviations:
    ~2 in 10⁹ draws, so about one compare in 400 at 600 groups × 2000 replicates) are read
    whole from the rows."""
    con.execute("DELETE FROM bootstrap_groups")
    con.execute(GROUPS_SQL)
    con.execute("DELETE FROM bootstrap_pairs")
    con.execute(PAIRS_SQL)
    found = intervals(con, opts)
    if not all(covered for _, covered in found.values()):
        con.execute(WHOLE_SQL, {"pairs": [p for p, (_, ok) in found.items() if not ok]})
        found = intervals(con, opts)
    return {pair: ci for pair, (ci, _) in found.items()}


# the groups of both sides of every pair with their band; the pairs by group id; WHOLE_SQL:
# the whole sorted groups of the given pairs
GROUPS_SQL = f"""
INSERT INTO bootstrap_groups
SELECT row_number() OVER (ORDER BY run_id, cell, metric), run_id, cell, metric, n, below, band
FROM {SUMMARIES}
WHERE (run_id, cell, metric) IN (SELECT (baseline_run, baseline_cell, metric) FROM compared
                                 UNION SELECT (run_id, cell, metric) FROM compared)
"""
PAIRS_SQL = """
INSERT INTO bootstrap_pairs
SELECT c.pair, b.g, o.g FROM compared AS c
JOIN bootstrap_groups AS b ON (b.run_id, b.cell, b.metric) = (c.baseline_run, c.baseline_cell,
                                                             c.metric)
JOIN bootstrap_groups AS o ON (o.run_id, o.cell, o.metric) = (c.run_id, c.cell, c.metric)
"""
WHOLE_SQL = """
UPDATE bootstrap_groups AS b SET below = 0, band = w.band
FROM (SELECT run_id, cell, metric, list(value ORDER BY value) AS band FROM metric_samples
      WHERE (run_id, cell, metric) IN (
          SELECT (run_id, cell, metric) FROM bootstrap_groups
          WHERE g IN (SELECT unnest([baseline_g, g]) FROM bootstrap_pairs
                      WHERE list_contains($pairs, pair)))
      GROUP BY ALL) AS w
WHERE (b.run_id, b.cell, b.metric) = (w.run_id, w.cell, w.metric)
"""


def assess(ci: Interval, row: dict[str, Any], opts: CompareOptions
           ) -> tuple[str, int | None]:
    """The verdict and the requests needed of one comparison row with interval ``ci``."""
    word = verdict(row["metric"], ci, row["n_baseline"], row["n"])
    target = opts.detect * abs(row["baseline_p50"])
    needed = needed_per_cell(row["n_baseline"], row["n"], ci, target)
    return word, needed if word != "faster" and word != "slower" else None


def shared_key(row: dict[str, Any]) -> str:
    """The cell for a run pair; for an axis pair, the baseline cell with the axis as '*'."""
    if row["kind"] == "run":
        return str(row["cell"])
    base, other = row["baseline_cell"].split("/"), row["cell"].split("/")
    return "/".join("*" if a != b else a for a, b in zip(base, other, strict=True))


def _sides(row: dict[str, Any]) -> tuple[str, str]:
    if row["kind"] == "run":
        return row["baseline_run"], row["run_id"]
    diff = [(a, b) for a, b in zip(row["baseline_cell"].split("/"), row["cell"].split("/"),
                                   strict=True) if a != b]
    return diff[0]


def read_summaries(con: duckdb.DuckDBPyConnection) -> None:
    """compare_stats: n, mean, p50 and stddev of every (run, cell, metric), from the runs'
    summaries (analysis/summaries.py: kept, or computed once and kept for the next call)."""
    if not con.execute(f"SELECT 1 FROM duckdb_tables() WHERE table_name = '{SUMMARIES}'"
                       ).fetchall():
        load_summaries(con)
        con.execute("CREATE OR REPLACE TEMP VIEW compare_stats AS "
                    f"SELECT run_id, cell, metric, n, mean, p50, stddev FROM {SUMMARIES}")


def comparison_rows(con: duckdb.DuckDBPyConnection, kind: str, opts: CompareOptions
                    ) -> list[tuple[Any, ...]]:
    """Rows of COLUMNS for every pair of the given kind ('run' or an axis)."""
    read_summaries(con)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE compared AS "
        "SELECT row_number() OVER (ORDER BY cell, baseline_cell, run_id, "
        "list_position($metrics, metric)) AS pair, * FROM comparison_of('compare_stats') "
        "WHERE kind = $kind AND list_contains($metrics, metric) AND n > 0 AND n_baseline > 0",
        {"kind": kind, "metrics": list(opts.metrics)})
    cur = con.execute("SELECT * FROM compared ORDER BY pair")
    names = [d[0] for d in cur.description or []]
    rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
    cis = bootstrap_pairs(con, opts) if rows else {}
    out = []
    for row in rows:
        ci = cis[row["pair"]]
        word, needed = assess(ci, row, opts)
        out.append((shared_key(row), *_sides(row), row["metric"], row["n_baseline"], row["n"],
                    row["baseline_p50"], row["p50"], row["delta_p50"], row["ratio_p50"],
                    ci.low, ci.high, word, needed))
    return out


def check_options(opts: CompareOptions, by: str | None) -> None:
    for metric in opts.metrics:
        if metric not in METRICS:
            raise ConfigError(f"--metric: unknown metric {metric!r}; use {', '.join(METRICS)}")
    if not 0 < opts.detect < 10:
        raise ConfigError(f"--detect: must be a share between 0 and 10, got {opts.detect}")
    if by is not None and by not in AXES and not by.isidentifier():
        raise ConfigError(f"--by: unknown axis {by!r}; use {', '.join(AXES)} or a matrix key")


def select_runs(results_dir: Path, run_ids: Sequence[str], latest: int | None,
                by: str | None) -> tuple[list[str] | None, int]:
    """Which runs to open and how many latest ones to take when none are named."""
    if run_ids and latest:
        raise ConfigError("--latest: give run ids or --latest N, not both")
    if latest is not None and latest < 1:
        raise ConfigError(f"--latest: must be at least 1, got {latest}")
    if run_ids:
        return list(run_ids), 0
    want = latest or (1 if by else 2)
    return None, want


TABLE_COLUMNS = ["cell", "compared", "metric", "n", "p50", "delta [95% CI]", "verdict"]


def compact_comparison(rows: list[tuple[Any, ...]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The comparison for a terminal (fits 100 columns): baseline -> other, the medians, the
    delta with its interval and the verdict (with the requests needed); every column:
    --wide, --format csv|json."""
    from latlab.analysis.readable import number

    def num(v: Any) -> str:
        return "-" if v is None else number(float(v))

    out = []
    for r in [dict(zip(COLUMNS, row, strict=True)) for row in rows]:
        sign = "+" if (r["delta_p50"] or 0) > 0 else ""
        needed = f" ({r['needed_per_cell']}/cell needed)" if r["needed_per_cell"] else ""
        out.append((r["cell"], f"{r['baseline']} -> {r['other']}", r["metric"],
                    f"{r['n_baseline']}/{r['n']}", f"{num(r['baseline_p50'])} -> "
                    f"{num(r['p50'])}", f"{sign}{num(r['delta_p50'])} [{num(r['ci95_low'])}, "
                    f"{num(r['ci95_high'])}]", f"{r['verdict']}{needed}"))
    return TABLE_COLUMNS, out


def _compact_table(rows: list[tuple[Any, ...]]) -> str:
    """The compact comparison; a cell that every row shares is named once, above."""
    columns, compact = compact_comparison(rows)
    cells = {r[0] for r in compact}
    if len(cells) > 1:
        return render((columns, compact), "table")
    return f"cell {cells.pop()} (every column: --wide)\n" + render(
        (columns[1:], [r[1:] for r in compact]), "table")


def compare_command(results_dir: Path, run_ids: Sequence[str], fmt: str,
                    latest: int | None = None, by: str | None = None,
                    opts: CompareOptions | None = None, wide: bool = False) -> str:
    """Compare runs (same cell across runs) or, with ``by``, cells within runs."""
    opts = opts or CompareOptions()
    check_format(fmt)
    check_options(opts, by)
    chosen, want = select_runs(results_dir, run_ids, latest, by)
    if chosen is None:
        chosen = _latest(results_dir, want)
    if by is None and len(chosen) < 2:
        raise ConfigError(f"compare needs at least 2 runs (got {len(chosen)}); "
                          "use --by AXIS to compare cells within one run")
    con = open_results(results_dir, chosen, needs=NEEDS)
    try:
        con.execute("SET VARIABLE latlab_baseline_run = ?", [_baseline(con, chosen, run_ids)])
        rows = comparison_rows(con, by or "run", opts)
        if not rows:
            return _nothing_to_compare(con, by)
        if fmt == "table" and not wide:
            return _compact_table(rows)
        return render((COLUMNS, rows), fmt)
    finally:
        con.close()


def _latest(results_dir: Path, want: int) -> list[str]:
    from latlab.analysis.commands import LATEST_NEEDS, latest_run_ids

    con = open_results(results_dir, needs=LATEST_NEEDS)
    try:
        return latest_run_ids(con, want)
    finally:
        con.close()


def _baseline(con: duckdb.DuckDBPyConnection, chosen: list[str], named: Sequence[str]) -> str:
    """The first named run, else the earliest of the chosen ones."""
    ordered = [str(r[0]) for r in con.execute(
        "SELECT run_id FROM run_order ORDER BY ord").fetchall()]
    return ordered[0] if not named else next(r for r in ordered if r.startswith(named[0]))


def _nothing_to_compare(con: duckdb.DuckDBPyConnection, by: str | None) -> str:
    (ok,) = con.execute("SELECT count(*) FROM measured_ok").fetchone() or (0,)
    if not ok:
        return "nothing to compare: the selected runs have no successful measured requests"
    if by:
        axes = [r[0] for r in con.execute(
            "SELECT DISTINCT axis FROM cell_pairs ORDER BY axis").fetchall()]
        known = ", ".join(axes) if axes else "none"
        return (f"nothing to compare: no two cells of a run differ only in {by!r} "
                f"(axes that do: {known})")
    return "nothing to compare: no cell appears in more than one of the selected runs"

