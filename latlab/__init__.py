"""latlab: declarative experiment runner for LLM API latency.

The package's parts live in the repository's top-level folders, mapped in pyproject.toml:

    latlab.runner     runner/     config → plan → schedule → send → record → write (the engine)
    latlab.providers  providers/  one module per wire protocol, and the emulator
    latlab.analysis   analysis/   DuckDB views over the Parquet results, and the analysis commands
    latlab.conf       conf/       the bundled Hydra config groups

docs/architecture.md draws the layers and says where to add a provider, a metric or a command.
"""

import os as _os
import signal as _signal
import sys as _sys

__version__ = "0.1.0"


def interrupted_early(signum: int, frame: object) -> None:
    """Ctrl-C while latlab is still starting (importing): one line, no traceback."""
    print("latlab: interrupted", file=_sys.stderr)  # noqa: T201
    _sys.exit(130)


if _os.path.basename(_sys.argv[0]) == "latlab":  # the console script; cli.main() hands over
    _signal.signal(_signal.SIGINT, interrupted_early)
