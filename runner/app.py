"""The Hydra app behind ``latlab run``: Hydra composes, this converts and calls ``run_experiment``.

The config directory is the checkout's ``conf/`` when running from a checkout,
else the installed package data ``pkg://runner.conf``. ``conf/experiment`` is a
symlink to the top-level ``experiments/``, so ``experiment=NAME`` selects a study.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.errors import LatlabError
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
    from runner.launch import resume_command
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

