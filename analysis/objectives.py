"""Burn-rate objectives and alert windows of an SLO (``objectives`` and ``burn_alerts`` in
conf/slo/*.yaml), checked and loaded as the tables analysis/80_burn_rates.sql reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import yaml

from latlab.runner.core.durations import parse_duration
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.paths import conf_file


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window alert: fires when both windows burn faster than ``factor``."""

    name: str
    severity: str
    long_s: float
    short_s: float
    factor: float


@dataclass(frozen=True)
class Objectives:
    ttft_threshold_ms: float
    ttft_target: float
    errors_target: float
    budget_s: float
    windows: tuple[BurnWindow, ...]


def _default_section(key: str) -> Any:
    text = conf_file("slo", "default.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)[key]


def _target(section: Mapping[str, Any], name: str) -> float:
    value = (section.get(name) or {}).get("target")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(f"slo.objectives.{name}.target: must be a share between 0 and 1 "
                          f"(e.g. 0.99), got {value!r}")
    return float(value)


def _window(entry: Any, i: int, scale: float) -> BurnWindow:
    where = f"slo.burn_alerts[{i}]"
    if not isinstance(entry, Mapping) or not {"name", "long", "short", "factor"} <= set(entry):
        raise ConfigError(f"{where}: needs name, long, short and factor "
                          "(e.g. {name: fast_burn, long: 1h, short: 5m, factor: 14.4})")
    factor = entry["factor"]
    if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
        raise ConfigError(f"{where}.factor: must be a number > 0, got {factor!r}")
    return BurnWindow(str(entry["name"]), str(entry.get("severity", "page")),
                      parse_duration(entry["long"], f"{where}.long") * scale,
                      parse_duration(entry["short"], f"{where}.short") * scale, float(factor))


def load_objectives(slo: Mapping[str, Any]) -> Objectives:
    """The SLO's objectives (conf/slo/default.yaml's where it has none); ConfigError naming
    the key when a value is wrong."""
    section = slo.get("objectives") or _default_section("objectives")
    alerts = slo.get("burn_alerts") or _default_section("burn_alerts")
    scale = section.get("window_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        raise ConfigError(f"slo.objectives.window_scale: must be a number > 0, got {scale!r}")
    threshold = (section.get("ttft") or {}).get("threshold_ms")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
        raise ConfigError(f"slo.objectives.ttft.threshold_ms: must be a number > 0 (ms), "
                          f"got {threshold!r}")
    budget = parse_duration(f"{section.get('budget_days', 30)}d", "slo.objectives.budget_days")
    return Objectives(float(threshold), _target(section, "ttft"), _target(section, "errors"),
                      budget * scale, tuple(_window(e, i, scale) for i, e in enumerate(alerts)))


def create_objective_tables(con: duckdb.DuckDBPyConnection, slo: Mapping[str, Any]) -> None:
    """Tables slo_objectives(objective, threshold_ms, target, budget_s) and
    burn_windows(alert, severity, long_s, short_s, factor)."""
    o = load_objectives(slo)
    con.execute("CREATE TABLE slo_objectives (objective VARCHAR, threshold_ms DOUBLE, "
                "target DOUBLE, budget_s DOUBLE)")
    con.execute("INSERT INTO slo_objectives VALUES ('ttft', ?, ?, ?), ('errors', NULL, ?, ?)",
                [o.ttft_threshold_ms, o.ttft_target, o.budget_s, o.errors_target, o.budget_s])
    con.execute("CREATE TABLE burn_windows (alert VARCHAR, severity VARCHAR, long_s DOUBLE, "
                "short_s DOUBLE, factor DOUBLE)")
    for w in o.windows:
        con.execute("INSERT INTO burn_windows VALUES (?, ?, ?, ?, ?)",
                    [w.name, w.severity, w.long_s, w.short_s, w.factor])
