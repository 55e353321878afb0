"""Hydra's multi-line composition errors as one line naming the key (Hydra itself prints two
lines and exits 1); runner/app/guard.py checks every job of ``latlab run`` with it."""

from __future__ import annotations

import re


def one_line(message: str) -> str:
    """Hydra's multi-line composition error, as one line naming the key."""
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", message)
    if missing:
        options = re.findall(r"^\t(\S+)$", message.split("Config search path")[0], re.M)
        group, name = missing.groups()
        return f"{group}={name}: no such option; available: {', '.join(options) or 'none'}"
    unknown = re.search(r"Could not override '([^']+)'", message)
    if unknown and unknown.group(1).startswith("matrix"):
        return ("matrix: add axes with ++matrix.AXIS=[v1,v2] "
                "(e.g. ++matrix.model=[haiku-4-5,opus-4-6])")
    if unknown:
        return f"{unknown.group(1)}: unknown key (check the spelling; see `latlab run --cfg job`)"
    if message.startswith("Multiple values for experiment"):
        return "experiment: select a study with experiment=NAME (not +experiment=NAME)"
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[0] if lines else "invalid override"
