"""``latlab export VIEW``: any view as CSV/JSON, to stdout or a file; unknown views named."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from latlab.analysis.export import export_command
from latlab.runner.core.errors import ConfigError
from tests.test_analysis import NEW, OLD, make_results
from tests.test_budget import make_budget_results


def test_export_views_as_csv_and_json(tmp_path: Path) -> None:
    results = make_results(tmp_path)
    cells = list(csv.DictReader(io.StringIO(export_command("cells", results, [OLD], "csv"))))
    assert [(c["cell"], c["n"], c["ttft_p50_ms"]) for c in cells] == [
        ("fast", "4", "250.0"), ("slow", "3", "2000.0")]
    grades = json.loads(export_command("grades", results, None, "json"))
    assert {(g["run_id"], g["cell"], g["grade"]) for g in grades} >= {(NEW, "mid", "B")}
    phases = json.loads(export_command("budget_phases", make_budget_results(tmp_path / "b"),
                                       None, "json"))
    assert len(phases) == 15 and phases[0]["phase"] in {"connect", "headers"}


def test_export_to_file_and_errors(tmp_path: Path) -> None:
    results = make_results(tmp_path)
    target = tmp_path / "cells.json"
    assert export_command("cells", results, None, "json", target) == (
        f"cells: 5 rows -> {target}")
    assert len(json.loads(target.read_text())) == 5
    with pytest.raises(ConfigError, match=r"export: unknown view 'nope'; known: .*budget.*"):
        export_command("nope", results, None, "csv")
    assert export_command("provider_overhead", results, None, "table") == (
        "provider_overhead: no rows")
    assert export_command("provider_overhead", results, None, "json") == "[]"
