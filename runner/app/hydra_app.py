"""The Hydra app behind ``latlab run``: Hydra composes, this converts and calls ``run_experiment``.

The config directory is the checkout's ``conf/`` when running from a checkout,
else the installed package data ``pkg://latlab.conf``. ``conf/experiment`` is a
symlink to the top-level ``experiments/``, so ``experiment=NAME`` selects a study.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from latlab.runner.app.resume_hint import resume_command
from latlab.runner.app.run import Composer, RunContext, RunInterrupted, RunSummary, run_experiment
from latlab.runner.config.compose import (
    HYDRA_VERSION_BASE,
    cell_overrides,
    composed,
    keeps_search_path,
    plain,
)
from latlab.runner.core.errors import LatlabError
from latlab.runner.core.paths import HYDRA_CONFIG_PATH


def config_path() -> str:
    """Where Hydra finds the bundled config groups (conf/, the package ``latlab.conf``)."""
    return HYDRA_CONFIG_PATH


def cell_composer(base_overrides: Sequence[str]) -> Composer:
    """Compose one matrix cell: the job's own overrides plus the cell's axis values."""

    def compose(cell: list[str]) -> dict[str, Any]:
        overrides = cell_overrides(base_overrides, cell)
        return composed(overrides)

    return compose


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
    search = [o for o in hc.overrides.hydra if keeps_search_path(o)]
    return RunContext(cell_composer(overrides + search), overrides, choices, job)


def task(cfg: DictConfig) -> None:
    """The Hydra task function: one job = one run."""
    from hydra.core.hydra_config import HydraConfig

    from latlab.runner.app.guard import scrub_saved_configs
    from latlab.runner.app.run_report import print_run_end

    quiet_http_loggers()
    scrub_saved_configs(Path(HydraConfig.get().runtime.output_dir))
    if (cfg.workload.get("search") or None) is not None:  # capacity search: runner/app/search.py
        search_task(plain(cfg))
        return
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


def search_task(cfg: dict[str, Any]) -> None:
    """A capacity search: one normal run per step, then the steps and the knee."""
    from latlab.runner.app.search import run_search, search_report

    try:
        result = run_search(cfg, job_context())
    except LatlabError as exc:
        exit_with(exc)
    except RunInterrupted as stop:
        print(f"latlab: interrupted in run {stop.run_id}", file=sys.stderr)  # noqa: T201
        sys.exit(130)
    print(search_report(result))  # noqa: T201


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
    main = hydra.main(version_base=HYDRA_VERSION_BASE, config_path=config_path(),
                      config_name="config")(task)
    main()

