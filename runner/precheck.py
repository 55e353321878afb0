"""Check ``latlab run``'s Hydra overrides before Hydra runs, so that a bad group option
or key exits 2 with one line (Hydra itself prints two lines and exits 1).

Each sweep value is composed on its own (sum, not product, of the sweep sizes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from runner.errors import ConfigError


def _expanded(overrides: Sequence[str]) -> list[list[str]]:
    """Override lists to compose: the first value of every sweep, then each other value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    firsts: list[str] = []
    extra: list[tuple[int, list[str]]] = []
    for i, override in enumerate(parsed):
        key = override.get_key_element()
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
            firsts.append(f"{key}={values[0]}")
            extra.append((i, [f"{key}={v}" for v in values[1:]]))
        else:
            firsts.append(str(override.input_line))
    combos = [firsts]
    for index, alternatives in extra:
        combos += [firsts[:index] + [alt] + firsts[index + 1:] for alt in alternatives]
    return combos


def precheck(config_dir: str, overrides: Sequence[str]) -> str:
    """Compose the config for the given overrides; ConfigError with Hydra's first line.

    Returns the first composition's ``results_dir`` (checked for writing by the caller
    before Hydra creates its job folders there)."""
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    user = [o for o in overrides
            if not o.lstrip("+~").startswith("hydra") or o.startswith("hydra.searchpath")]
    try:
        combos = _expanded(user)
        init = (initialize_config_module("runner.conf", version_base="1.3")
                if config_dir.startswith("pkg://")
                else initialize_config_dir(config_dir, version_base="1.3"))
        with init:
            results = [str(compose(config_name="config", overrides=c).results_dir) for c in combos]
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(one_line(str(exc))) from exc
    return results[0]


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
