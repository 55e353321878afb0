"""How ``latlab run`` starts Hydra, after runner/app/guard.py checked everything: Hydra's own
failures become one line (a full disk while it writes ``.hydra/``), a refused or failed start
leaves no folder behind, and Ctrl-C's resume hint is a command that pastes back as printed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from latlab.runner.core.errors import ConfigError


def run_hydra(argv: Sequence[str], folders: Sequence[Path]) -> None:
    """``hydra_main``; Hydra's own failures (its saved files cannot be written: a full disk)
    as one line; a refused or failed run leaves no folder behind (``guard.Footprint``)."""
    from hydra.errors import HydraException

    from latlab.runner.app.guard import Footprint
    from latlab.runner.app.hydra_app import hydra_main
    from latlab.runner.config.hydra_errors import one_line
    from latlab.runner.core.errors import ResultsError

    footprint = Footprint(folders)
    try:
        with hydra_errors_raised():
            hydra_main(argv)
    except SystemExit as stop:
        if stop.code not in (0, None):
            footprint.remove_if_refused()
        raise
    except KeyboardInterrupt:
        footprint.remove_if_refused()
        raise
    except OSError as exc:
        footprint.remove_if_refused()
        raise ResultsError(f"hydra.run.dir: cannot write Hydra's files: "
                           f"{exc.strerror or exc} ({exc.filename or 'results'})") from exc
    except HydraException as exc:
        footprint.remove_if_refused()
        raise ConfigError(one_line(str(exc))) from exc


@contextmanager
def hydra_errors_raised() -> Iterator[None]:
    """Hydra prints a traceback and exits 1 for its own errors; raise them to latlab."""
    import hydra._internal.utils as hydra_utils

    original = hydra_utils.run_and_report
    hydra_utils.run_and_report = lambda func: func()
    try:
        yield
    finally:
        hydra_utils.run_and_report = original
