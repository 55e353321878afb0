"""What ``latlab monitor`` reads back after each round: the round's requests, each cell's
grade and SLO attainment, and where a restarted monitor continues. Plain values: the monitor
(runner/app/monitor.py) turns them into its metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from latlab.analysis.alerts import BurnAlert, burn_rows, open_history
from latlab.analysis.query import (
    SQL_DIR,
    create_views,
    known_run_ids,
    open_results,
    recent_run_ids,
    run_sql,
)


@dataclass
class RoundReadout:
    """One round's rows and the monitor's SLO state after it."""

    observations: list[dict[str, Any]] = field(default_factory=list)
    grades: dict[str, str | None] = field(default_factory=dict)  # cell -> grade
    counts: list[tuple[Any, ...]] = field(default_factory=list)  # the round's slo_counts rows
    headroom: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[BurnAlert] = field(default_factory=list)


def last_round(results_dir: Path, monitor_id: str) -> int:
    """The highest round number of ``monitor_id`` on disk (0: none yet)."""
    if not results_dir.is_dir() or not known_run_ids(results_dir):
        return 0
    con = open_results(results_dir, needs=["monitor_rounds"])
    con.execute("SET VARIABLE latlab_monitor = ?", [monitor_id])
    _, rows = run_sql(con, "SELECT last_round FROM monitor_rounds "
                           "WHERE monitor_id = getvariable('latlab_monitor')")
    return int(rows[0][0] or 0) if rows else 0


def round_run(results_dir: Path, monitor_id: str, number: int,
              within_s: float = 86400.0) -> tuple[str, int, int] | None:
    """(run_id, requests, errors) of round ``number`` of ``monitor_id``, among the runs
    started within ``within_s``; None when that round left no run record."""
    ids = recent_run_ids(results_dir, within_s) if results_dir.is_dir() else []
    if not ids:
        return None
    con = open_results(results_dir, ids, needs=["runs"])
    con.execute("SET VARIABLE latlab_monitor = ?", [monitor_id])
    con.execute("SET VARIABLE latlab_round = ?", [number])
    _, rows = run_sql(con, "SELECT run_id, requests, errors FROM runs WHERE monitor_id = "
                           "getvariable('latlab_monitor') AND monitor_round = "
                           "getvariable('latlab_round') ORDER BY started_at DESC LIMIT 1")
    return (str(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None


def _dicts(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    columns, rows = run_sql(con, sql)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def read_round(results_dir: Path, run_id: str, monitor_id: str,
               slo: Mapping[str, Any]) -> RoundReadout:
    """The round ``run_id`` of ``monitor_id``, and the burn rates over its history."""
    con = open_history(results_dir, slo, ["probe_observations", "grades", "slo_counts",
                                          "burn_rates", "ratelimit_headroom"])
    if con is None:
        return RoundReadout()
    con.execute("SET VARIABLE latlab_run = ?", [run_id])
    out = RoundReadout(alerts=burn_rows(con, monitor_id))
    out.observations = _dicts(con, "SELECT * FROM probe_observations "
                                   "WHERE run_id = getvariable('latlab_run')")
    out.grades = {r["cell"]: r["grade"] for r in _dicts(
        con, "SELECT cell, grade FROM grades WHERE run_id = getvariable('latlab_run')")}
    out.counts = run_sql(con, f"SELECT {COUNT_COLUMNS} FROM slo_counts "
                              "WHERE run_id = getvariable('latlab_run')")[1]
    out.headroom = _dicts(con, "SELECT * FROM ratelimit_headroom "
                               "WHERE run_id = getvariable('latlab_run')")
    return out


COUNT_COLUMNS = "monitor_id, run_id, cell, objective, target, budget_s, last_at, n, bad"


class AttainmentCache:
    """A monitor's slo_counts rows, kept in memory from round to round, and the
    ``slo_attainment`` view (analysis/82_attainment.sql) over them: a round adds its own
    counts instead of reading the whole budget period again."""

    def __init__(self) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("CREATE TABLE slo_counts (monitor_id VARCHAR, run_id VARCHAR, "
                         "cell VARCHAR, objective VARCHAR, target DOUBLE, budget_s DOUBLE, "
                         "last_at TIMESTAMPTZ, n BIGINT, bad BIGINT)")
        create_views(self.con, SQL_DIR / ATTAINMENT_FILE, Path("."))

    def load(self, results_dir: Path, slo: Mapping[str, Any], monitor_id: str) -> None:
        """The counts of the whole budget period, once (when the monitor starts)."""
        con = open_history(results_dir, slo, ["slo_counts"], whole_budget=True)
        if con is not None:  # a year of 5-minute rounds: ~350 k rows, moved as Arrow (row by
            con.execute("SET VARIABLE latlab_monitor = ?", [monitor_id])  # row: minutes)
            loaded = con.sql(f"SELECT {COUNT_COLUMNS} FROM slo_counts WHERE monitor_id = "
                             "getvariable('latlab_monitor')").to_arrow_table()
            self.con.register("latlab_loaded_counts", loaded)
            self.con.execute("INSERT INTO slo_counts SELECT * FROM latlab_loaded_counts")
            self.con.unregister("latlab_loaded_counts")
            self.add([])

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.con.executemany("INSERT INTO slo_counts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 rows)
        self.con.execute("DELETE FROM slo_counts WHERE last_at < now() - to_seconds(budget_s)")

    def attainment(self, monitor_id: str) -> dict[tuple[str, str], tuple[float, float]]:
        """(cell, objective) -> (attainment, budget_remaining) of ``monitor_id``."""
        self.con.execute("SET VARIABLE latlab_monitor = ?", [monitor_id])
        _, rows = run_sql(self.con, "SELECT cell, objective, attainment, budget_remaining "
                                    "FROM slo_attainment WHERE monitor_id = "
                                    "getvariable('latlab_monitor')")
        return {(r[0], r[1]): (float(r[2]), float(r[3])) for r in rows}


ATTAINMENT_FILE = "82_attainment.sql"
