"""``latlab advise``: the rules of the `advice` view (analysis/60_advice.sql), each with the
run, cell and figures that triggered it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from latlab.analysis.query import check_format, open_results, render

COLUMNS = ["rule", "cell", "advice", "evidence", "run_id"]
RULES = ("prompt_caching", "smaller_model", "route_direct", "reuse_clients", "stream",
         "raise_timeout", "rate_limits")


def advise_command(results_dir: Path, run_ids: Sequence[str] | None, fmt: str,
                   slo: Mapping[str, Any] | None = None) -> str:
    """Advice for the given runs (default: the latest run)."""
    from latlab.analysis.commands import LATEST_NEEDS, latest_run_ids

    check_format(fmt)
    con = open_results(results_dir, run_ids, slo, needs=("advice", *LATEST_NEEDS))
    try:
        runs = [r for (r,) in con.execute("SELECT DISTINCT run_id FROM requests").fetchall()]
        runs = runs if run_ids else latest_run_ids(con, 1)
        rows = con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM advice WHERE list_contains($runs, run_id) "
            "ORDER BY list_position($rules, rule), run_id, cell",
            {"runs": runs, "rules": list(RULES)}).fetchall()
    finally:
        con.close()
    if not rows:
        return (f"no advice for run {', '.join(runs) or '(none)'}: no rule triggered "
                f"(rules: {', '.join(RULES)})")
    return render((COLUMNS, rows), fmt)
