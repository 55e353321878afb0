"""The SLO thresholds (conf/slo/*.yaml): the grades, their metrics, and the check of a
config's thresholds. Plain Python: ``latlab run`` checks them before any request without
loading DuckDB; analysis/query.py turns them into the ``slo_thresholds`` table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import yaml

from latlab.runner.core.errors import ConfigError
from latlab.runner.core.paths import conf_file

GRADES = ("A", "B", "C", "D")
# metric -> True if lower is better (threshold is a maximum), False if it is a minimum.
SLO_METRICS: dict[str, bool] = {
    "ttft_p50_ms": True,
    "ttft_p99_ms": True,
    "output_tps_mean": False,
    "error_rate": True,
}


def default_slo() -> dict[str, Any]:
    """conf/slo/default.yaml, from the source tree or the installed package."""
    text = conf_file("slo", "default.yaml").read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def validate_slo(slo: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the key if thresholds are missing, non-numeric or loose."""
    thresholds = slo.get("thresholds") if isinstance(slo, Mapping) else None
    if not isinstance(thresholds, Mapping):
        raise ConfigError("slo.thresholds: missing (a mapping of grade A-D to thresholds)")
    for grade in thresholds:
        if grade not in GRADES:
            raise ConfigError(f"slo.thresholds.{grade}: unknown grade (use {', '.join(GRADES)})")
    for grade in GRADES:
        _check_grade(thresholds, grade)
    for looser, stricter in zip(GRADES[1:], GRADES, strict=False):
        _check_monotonic(thresholds, stricter, looser)


def _check_grade(thresholds: Mapping[str, Any], grade: str) -> None:
    entry = thresholds.get(grade)
    if not isinstance(entry, Mapping):
        raise ConfigError(f"slo.thresholds.{grade}: missing (needs {', '.join(SLO_METRICS)})")
    for key in entry:
        if key not in SLO_METRICS:
            raise ConfigError(f"slo.thresholds.{grade}.{key}: unknown metric")
    for metric in SLO_METRICS:
        value = entry.get(metric)
        where = f"slo.thresholds.{grade}.{metric}"
        if value is None:
            raise ConfigError(f"{where}: missing")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{where}: must be a finite number >= 0, got {value!r}")
        if metric == "error_rate" and value > 1:
            raise ConfigError(f"{where}: must be between 0 and 1, got {value!r}")


def _check_monotonic(thresholds: Mapping[str, Any], stricter: str, looser: str) -> None:
    for metric, lower_is_better in SLO_METRICS.items():
        strict_v, loose_v = thresholds[stricter][metric], thresholds[looser][metric]
        if lower_is_better and loose_v < strict_v:
            raise ConfigError(
                f"slo.thresholds.{looser}.{metric}: {loose_v} is stricter than "
                f"{stricter}'s {strict_v}; grades must get looser from A to D (at most)"
            )
        if not lower_is_better and loose_v > strict_v:
            raise ConfigError(
                f"slo.thresholds.{looser}.{metric}: {loose_v} is stricter than "
                f"{stricter}'s {strict_v}; grades must get looser from A to D (at least)"
            )
