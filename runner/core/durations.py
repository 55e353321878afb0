"""Durations written in config and on the command line: ``500ms``, ``30s``, ``5m``, ``1h``, ``3d``
or a plain number of seconds. The one parser (monitor schedule, burn-rate windows, --since)."""

from __future__ import annotations

import math
import re

from latlab.runner.core.errors import ConfigError

UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object, key: str) -> float:
    """Seconds in ``value``; ConfigError naming ``key`` and the accepted spelling otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration like 30s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ConfigError(f"{key}: expected a duration like 30s, 5m or 1h, got {value!r}")
        seconds = float(match.group(1)) * UNITS_S[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{key}: must be a positive duration (30s, 5m, 1h), got {value!r}")
    return seconds
