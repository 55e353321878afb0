"""The Hydra app behind ``latlab run``: Hydra composes, this converts and calls ``run_experiment``.

The config directory is the checkout's ``conf/`` when running from a checkout,
else the installed package data ``pkg://runner.conf``. ``conf/experiment`` is a
symlink to the top-level ``experiments/``, so ``experiment=NAME`` selects a study.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.errors import ConfigError, LatlabError
from runner.run import Composer, RunContext, RunInterrupted, RunSummary, run_experiment

CHECKOUT_CONF = Path(__file__).resolve().parents[1] / "conf"


def config_path() -> str:
    """Absolute path of the checkout's conf/, or the installed package's."""
    if (CHECKOUT_CONF / "config.yaml").is_file():
        return str(CHECKOUT_CONF)
    return "pkg://runner.conf"


def _override_key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0]


def cell_composer(base_overrides: Sequence[str]) -> Composer:
    """Compose one matrix cell: the job's own overrides plus the cell's axis values."""

    def compose(cell_overrides: list[str]) -> dict[str, Any]:
        from hydra import compose as hydra_compose

        from runner.guard import composed_before

        axes = {_override_key(o) for o in cell_overrides}
        kept = [o for o in base_overrides if _override_key(o) not in axes
                and (not _override_key(o).startswith("hydra") or _keeps_search_path(o))]
        cached = composed_before(kept + cell_overrides)  # checked before Hydra ran
        if cached is not None:
            return cached
        cfg = hydra_compose(config_name="config", overrides=kept + cell_overrides)
        return plain(cfg)

    return compose


def _keeps_search_path(override: str) -> bool:
    """The search path (``--experiments-dir``, ``hydra.searchpath=…``) finds a user's own
    experiment: every cell must compose with it."""
    return _override_key(override) == "hydra.searchpath"


def plain(cfg: DictConfig) -> dict[str, Any]:
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


def job_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def job_context() -> RunContext:
    """Overrides, group choices and job number of the current Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    choices = {k: str(v) for k, v in hc.runtime.choices.items()
               if not k.startswith("hydra") and v is not None}
    job = hc.job.num if hc.mode == RunMode.MULTIRUN else None
    search = [o for o in hc.overrides.hydra if _keeps_search_path(o)]
    return RunContext(cell_composer(overrides + search), overrides, choices, job)


def task(cfg: DictConfig) -> None:
    """The Hydra task function: one job = one run."""
    from hydra.core.hydra_config import HydraConfig

    from runner.guard import scrub_saved_configs
    from runner.report import print_run_end

    quiet_http_loggers()
    scrub_saved_configs(Path(HydraConfig.get().runtime.output_dir))
    try:
        summary: RunSummary = run_experiment(plain(cfg), job_context())
    except LatlabError as exc:
        exit_with(exc)
    except RunInterrupted as stop:
        print(f"latlab: interrupted: rows so far are on disk; continue with: "  # noqa: T201
              f"{resume_command(job_overrides(), stop.run_id)}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("latlab: interrupted before the first request: nothing was measured",  # noqa: T201
              file=sys.stderr)
        sys.exit(130)
    print_run_end(summary, plain(cfg)["slo"])


RUN_FLAGS: list[str] = []  # ``latlab run``'s own flags (--experiments-dir DIR), for the hint


def resume_command(overrides: Sequence[str], run_id: str) -> str:
    """The command that continues run ``run_id``, shell-quoted, to paste back as printed."""
    import shlex

    kept = [o for o in overrides if not o.startswith("resume=")]
    return shlex.join(["latlab", "run", *RUN_FLAGS, *kept, f"resume={run_id}"])


def quiet_http_loggers() -> None:
    """Hydra logs at INFO; per-request lines from HTTP libraries would drown the progress bar."""
    for name in ("httpx", "httpcore", "httpx2", "httpcore2", "aiohttp", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def exit_with(exc: LatlabError) -> None:
    """One line and exit code 2; the traceback only with LATLAB_DEBUG=1."""
    if os.environ.get("LATLAB_DEBUG"):
        raise exc
    print(f"latlab: error: {exc}", file=sys.stderr)  # noqa: T201
    sys.exit(exc.exit_code)


def hydra_main(argv: Sequence[str]) -> None:
    """Run the Hydra app with ``argv`` as its command line."""
    import hydra

    sys.argv = ["latlab run", *argv]
    main = hydra.main(version_base="1.3", config_path=config_path(), config_name="config")(task)
    main()


def run_hydra(argv: Sequence[str], folders: Sequence[Path]) -> None:
    """``hydra_main``; Hydra's own failures (its saved files cannot be written: a full disk)
    as one line; a refused or failed run leaves no folder behind (``guard.Footprint``)."""
    from hydra.errors import HydraException

    from runner.errors import ResultsError
    from runner.guard import Footprint
    from runner.precheck import one_line

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
