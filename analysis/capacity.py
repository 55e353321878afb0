"""A load step's outcome for the capacity search (runner/app/search.py): how many requests met
the SLO (the ``load_steps`` macro, analysis/45_traffic.sql) and the goodput's confidence
interval (Wilson score, 95 %)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from latlab.analysis.query import open_results

Z95 = 1.959964


@dataclass(frozen=True)
class StepCounts:
    """Measured requests of one or more runs at one load, and how many met the SLO."""

    n: int = 0
    good: int = 0
    errors: int = 0
    ttft_rise: float | None = None  # last quarter's TTFT p50 over the first's (latest run)

    def plus(self, other: StepCounts) -> StepCounts:
        return StepCounts(self.n + other.n, self.good + other.good, self.errors + other.errors,
                          other.ttft_rise)


def wilson_interval(good: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion good / n; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p, z2 = good / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def step_counts(results_dir: Path, run_ids: Sequence[str], ttft_ms: float,
                tpot_ms: float | None) -> StepCounts:
    """The pooled counts of ``run_ids`` against the per-request limits."""
    con = open_results(results_dir, list(run_ids), needs=["load_steps"])  # one step a call
    rows = con.execute("SELECT n, good, errors, ttft_rise FROM load_steps(?, ?)",
                       [ttft_ms, tpot_ms]).fetchall()
    total = StepCounts()
    for n, good, errors, rise in rows:
        total = total.plus(StepCounts(int(n), int(good), int(errors), rise))
    return total
