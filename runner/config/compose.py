"""Hydra, initialised once: composing the bundled config groups (conf/) outside ``hydra.main``.

``latlab run`` itself is a ``hydra.main`` app (runner/app/hydra_app.py) on the same search
path and version; the preflight (app/guard.py) and ``latlab check`` compose here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from latlab.runner.core.paths import CONF_PACKAGE

HYDRA_VERSION_BASE = "1.3"


@contextmanager
def hydra_initialised() -> Iterator[None]:
    """Hydra's global state set up on conf/ for the block (``compose`` works inside)."""
    from hydra import initialize_config_module  # hydra's import costs ~0.3 s: only when used
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    _WITH_HYDRA.clear()
    with initialize_config_module(CONF_PACKAGE, version_base=HYDRA_VERSION_BASE):
        yield


def plain(cfg: Any) -> dict[str, Any]:
    """A composed (DictConfig) config as plain, resolved Python containers."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


_COMPOSED: dict[tuple[str, ...], dict[str, Any]] = {}  # this process's compositions
_WITH_HYDRA: dict[tuple[str, ...], Any] = {}  # this Hydra block's, with the hydra node


def compose_with_hydra(overrides: Sequence[str], job: Sequence[str]) -> Any:
    """The composed config for ``overrides`` with Hydra's own (``hydra.*``), unresolved; kept
    for the one :func:`compose_plain` of ``job`` (the same overrides without Hydra's settings,
    which change only the hydra node) in this :func:`hydra_initialised` block, so the job is
    not composed twice."""
    from hydra import compose

    cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    _WITH_HYDRA[tuple(job)] = cfg
    return cfg


def compose_plain(overrides: Sequence[str]) -> dict[str, Any]:
    """The composed config for ``overrides`` (inside :func:`hydra_initialised`), plain;
    remembered, so the run's matrix cells that the preflight composed are not composed again
    (Hydra's compose costs ~0.2 s a cell)."""
    found = _WITH_HYDRA.pop(tuple(overrides), None)
    cfg = plain(new_composition(overrides) if found is None else without_hydra(found))
    _COMPOSED[tuple(overrides)] = cfg
    return copy.deepcopy(cfg)


def new_composition(overrides: Sequence[str]) -> Any:
    from hydra import compose

    return compose(config_name="config", overrides=list(overrides))


def without_hydra(cfg: Any) -> Any:
    """``cfg`` less its hydra node, as Hydra's ``compose`` returns it without
    ``return_hydra_config``."""
    from omegaconf import open_dict

    if "hydra" in cfg:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def composed(overrides: Sequence[str]) -> dict[str, Any]:
    """The config the preflight already composed for exactly these overrides, else a new
    composition (inside :func:`hydra_initialised`)."""
    found = _COMPOSED.get(tuple(overrides))
    return compose_plain(overrides) if found is None else copy.deepcopy(found)


def override_key(override: str) -> str:
    """``+workload.iterations=5`` -> ``workload.iterations``."""
    return override.lstrip("+~").partition("=")[0]


def is_hydra_key(override: str) -> bool:
    key = override_key(override)
    return key.startswith(("hydra.", "hydra/")) or key == "hydra"


def keeps_search_path(override: str) -> bool:
    """The search path (``--experiments-dir``, ``hydra.searchpath=…``) finds a user's own
    experiment: every cell of the job composes with it."""
    return override_key(override) == "hydra.searchpath"


def cell_overrides(base: Sequence[str], cell: Sequence[str]) -> list[str]:
    """One matrix cell's overrides: the job's own (Hydra's settings left out, its search path
    kept), each axis value replacing the job's value of that key."""
    axes = {override_key(o) for o in cell}
    kept = [o for o in base if override_key(o) not in axes
            and (not is_hydra_key(o) or keeps_search_path(o))]
    return kept + list(cell)
