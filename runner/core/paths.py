"""Where latlab's bundled files are: the one lookup of conf/ (the package ``latlab.conf``).

A source checkout (an editable install) and an installed wheel both import ``latlab.conf``,
so every reader of a bundled config file goes through :func:`conf_file`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CONF_PACKAGE = "latlab.conf"
HYDRA_CONFIG_PATH = f"pkg://{CONF_PACKAGE}"  # what hydra.main and the composers search


def conf_dir() -> Path:
    """The folder of the bundled Hydra config groups (conf/ in a checkout)."""
    return Path(str(resources.files(CONF_PACKAGE))).resolve()


def conf_file(group: str, name: str) -> Path:
    """``conf/<group>/<name>``; it may not exist."""
    return conf_dir() / group / name
