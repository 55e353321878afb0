"""The ``monitor`` config group (conf/monitor/default.yaml), checked: one line naming the key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from latlab.runner.core.durations import parse_duration
from latlab.runner.core.errors import ConfigError

_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class MonitorSettings:
    monitor_id: str
    every_s: float
    jitter: float
    duration_s: float | None
    rounds: int | None
    max_rps: float
    metrics_host: str
    metrics_port: int | None
    webhook: str | None


def monitor_id_for(cfg: Mapping[str, Any]) -> str:
    """monitor.id, else run_name, else the experiment's name, else ``monitor``."""
    section = cfg.get("monitor") or {}
    name = section.get("id") or cfg.get("run_name") or cfg.get("experiment_name") or "monitor"
    if not _ID.match(str(name)):
        raise ConfigError(f"monitor.id: {name!r} may hold only letters, digits, '_', '.', '-'; "
                          "set monitor.id=NAME")
    return str(name)


def _number(section: Mapping[str, Any], key: str, low: float, high: float) -> float:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"monitor.{key}: must be a number in [{low:g}, {high:g}], "
                          f"got {value!r}")
    return float(value)


def _optional_int(section: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"monitor.{key}: must be a whole number in [{low}, {high}] or null, "
                          f"got {value!r}")
    return value


def _webhook(value: Any) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://\S+$", str(value)):
        raise ConfigError(f"monitor.webhook: expected an http(s):// URL, got {value!r}")
    return str(value)


def load_settings(cfg: Mapping[str, Any], experiment: str | None) -> MonitorSettings:
    """MonitorSettings from the composed config; ConfigError naming the key and the fix."""
    section = cfg.get("monitor") or {}
    duration = section.get("duration")
    return MonitorSettings(
        monitor_id=monitor_id_for({**cfg, "experiment_name": experiment}),
        every_s=parse_duration(section.get("every"), "monitor.every"),
        jitter=_number(section, "jitter", 0.0, 0.9),
        duration_s=None if duration is None else parse_duration(duration, "monitor.duration"),
        rounds=_optional_int(section, "rounds", 1, 10**9),
        max_rps=_number(section, "max_rps", 0.001, 1000.0),
        metrics_host=str(section.get("metrics_host") or "127.0.0.1"),
        metrics_port=_optional_int(section, "metrics_port", 0, 65535),
        webhook=_webhook(section.get("webhook")))
