"""``latlab alerts``: which burn-rate alerts fire over a monitor's history, and why.

The burn rates are the views of analysis/80_burn_rates.sql (the one definition); this module
selects the recent runs, reads the views and words the result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from latlab.analysis.objectives import load_objectives
from latlab.analysis.query import (
    latest_run_ids,
    open_results,
    recent_run_ids,
    render,
    run_sql,
)
from latlab.analysis.slo import default_slo

LATEST_RUNS = 200  # where `latlab alerts` looks for the SLO a monitor last ran with


@dataclass(frozen=True)
class BurnAlert:
    """One (monitor, cell, objective, alert) row of ``burn_rates``."""

    monitor_id: str | None
    alert: str
    severity: str
    cell: str
    provider: str
    model: str
    prompt: str
    guardrail: str
    objective: str
    target: float
    factor: float
    long_s: float
    long_n: int
    long_bad: int
    long_burn: float | None
    short_s: float
    short_n: int
    short_bad: int
    short_burn: float | None
    firing: bool

    def why(self) -> str:
        """One line: the numbers behind the state."""
        state = "FIRING" if self.firing else "ok"
        return (f"{state} {self.alert} ({self.severity}) {self.cell} {self.objective} "
                f"target {self.target:g}: burn {_burn(self.long_burn)} over {_span(self.long_s)} "
                f"({self.long_bad}/{self.long_n} bad) and {_burn(self.short_burn)} over "
                f"{_span(self.short_s)} ({self.short_bad}/{self.short_n} bad), "
                f"threshold {self.factor:g}x")


def _burn(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"


def open_history(results_dir: Path, slo: Mapping[str, Any], needs: Sequence[str],
                 whole_budget: bool = False) -> duckdb.DuckDBPyConnection | None:
    """The views over the runs recent enough for the SLO's alert windows, or for its whole
    budget period (None: no such run)."""
    objectives = load_objectives(slo)
    longest = max((w.long_s for w in objectives.windows), default=objectives.budget_s)
    if whole_budget or "slo_attainment" in needs:
        longest = max(longest, objectives.budget_s)
    ids = recent_run_ids(results_dir, longest)
    return open_results(results_dir, ids, slo, needs=needs) if ids else None


def burn_alerts(results_dir: Path, slo: Mapping[str, Any],
                monitor_id: str | None = None) -> list[BurnAlert]:
    """Every burn_rates row over the recent history (of ``monitor_id`` when given)."""
    con = open_history(results_dir, slo, ["burn_rates"])
    return [] if con is None else burn_rows(con, monitor_id)


def burn_rows(con: duckdb.DuckDBPyConnection, monitor_id: str | None) -> list[BurnAlert]:
    con.execute("SET VARIABLE latlab_monitor = ?", [monitor_id])
    columns, rows = run_sql(con, "SELECT * FROM burn_rates WHERE getvariable('latlab_monitor') "
                                 "IS NULL OR monitor_id = getvariable('latlab_monitor') "
                                 "ORDER BY firing DESC, alert, cell, objective")
    return [BurnAlert(**dict(zip(columns, row, strict=True))) for row in rows]


def monitor_slo(results_dir: Path, monitor_id: str | None) -> dict[str, Any] | None:
    """The SLO in the latest run of ``monitor_id`` (of any monitor when None) among the
    most recent LATEST_RUNS runs, if any."""
    con = open_results(results_dir, latest_run_ids(results_dir, LATEST_RUNS),
                       needs=["monitor_rounds"])
    con.execute("SET VARIABLE latlab_monitor = ?", [monitor_id])
    _, rows = run_sql(con, "SELECT config_yaml FROM monitor_rounds WHERE getvariable("
                           "'latlab_monitor') IS NULL OR monitor_id = getvariable("
                           "'latlab_monitor') ORDER BY last_started DESC LIMIT 1")
    if not rows or not rows[0][0]:
        return None
    slo = (yaml.safe_load(rows[0][0]) or {}).get("slo")
    return dict(slo) if isinstance(slo, Mapping) else None


def alerts_command(results_dir: Path, slo: Mapping[str, Any] | None, monitor_id: str | None,
                   fmt: str, show_all: bool) -> str:
    """What fires and why: one line per firing alert, then the burn-rate table. Without
    ``slo``, the SLO the monitor ran with (else conf/slo/default.yaml)."""
    slo = slo or monitor_slo(results_dir, monitor_id) or default_slo()
    rows = burn_alerts(results_dir, slo, monitor_id)
    shown = rows if show_all else [r for r in rows if r.firing]
    if fmt != "table":
        return render(_table(shown), fmt)
    if not rows:
        return "no monitored requests in the alert windows"
    lines = [r.why() for r in rows if r.firing] or ["no alert is firing"]
    return "\n".join([*lines, "", render(_table(shown), fmt)] if shown else lines)


def _table(rows: Sequence[BurnAlert]) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns = ["alert", "severity", "firing", "cell", "objective", "target", "factor",
               "long_s", "long_n", "long_bad", "long_burn", "short_s", "short_n", "short_bad",
               "short_burn", "monitor_id"]
    return columns, [tuple(getattr(r, c) for c in columns) for r in rows]
