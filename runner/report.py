"""What ``latlab run`` prints when a run ends: where the rows are, and the run's grades."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.run import RunSummary


def print_run_end(summary: RunSummary, slo: Mapping[str, Any]) -> None:
    """The run id, counts, results location and the grade table (stdout)."""
    from analysis.commands import grade_command

    print(  # noqa: T201
        f"run {summary.run_id}: {summary.requests} requests, {summary.errors} errors "
        f"-> {summary.results_dir / 'requests' / summary.run_id}")
    print(grade_command(summary.results_dir, [summary.run_id], "table", slo))  # noqa: T201
