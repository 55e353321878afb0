"""Hydra, initialised once: composing the bundled config groups (conf/) outside ``hydra.main``.

``latlab run`` itself is a ``hydra.main`` app (runner/app/hydra_app.py) on the same search
path and version; the preflight (config/precheck.py) and ``latlab check`` compose here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from latlab.runner.core.paths import CONF_PACKAGE

HYDRA_VERSION_BASE = "1.3"


@contextmanager
def hydra_initialised() -> Iterator[None]:
    """Hydra's global state set up on conf/ for the block (``compose`` works inside)."""
    from hydra import initialize_config_module  # hydra's import costs ~0.3 s: only when used

    with initialize_config_module(CONF_PACKAGE, version_base=HYDRA_VERSION_BASE):
        yield


def plain(cfg: Any) -> dict[str, Any]:
    """A composed (DictConfig) config as plain, resolved Python containers."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


def compose_plain(overrides: Sequence[str]) -> dict[str, Any]:
    """The composed config for ``overrides`` (inside :func:`hydra_initialised`), plain."""
    from hydra import compose

    return plain(compose(config_name="config", overrides=list(overrides)))
