"""Resume an interrupted run: ``latlab run … resume=RUN_ID``.

The rows already on disk decide what is done: every (cell, iteration, warm-up) pair
with a row, success or failure, is skipped, so nothing is measured twice. The run
keeps its id and first start time; ``runs.resumes`` counts the resumptions. The
config must be the one the run started with (``resume`` itself aside).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from latlab.runner.core.errors import ConfigError, ResultsError
from latlab.runner.core.records import REQUESTS_SCHEMA, RunRecord
from latlab.runner.results import storage
from latlab.runner.results.catalog import Catalog
from latlab.runner.results.layout import (
    COMPACTED,
    REQUESTS,
    requests_folder,
    run_day,
    run_record_path,
)

Done = set[tuple[str, int, bool]]


def load_run_record(results_dir: Path, run_id: str) -> RunRecord:
    """The ``runs`` row of ``run_id``; ConfigError if there is no such run."""
    path = run_record_path(results_dir, run_id)
    if not storage.is_remote(results_dir) and Catalog(results_dir).is_packed(run_id):
        raise ConfigError(f"resume: run {run_id} finished and was compacted into "
                          f"{COMPACTED}/{run_day(run_id)}: nothing is left to resume")
    if not path.is_file():
        raise ConfigError(f"resume: no run {run_id} under {results_dir}/runs")
    try:
        (row,) = pq.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:
        raise ResultsError(f"resume: cannot read {path}: {exc}") from exc
    known = RunRecord.__dataclass_fields__
    return RunRecord(**{k: v for k, v in row.items() if k in known})


def finished_requests(results_dir: Path, run_id: str) -> Done:
    """(cell, iteration, warmup) of every row already written for ``run_id``."""
    if storage.is_remote(results_dir):  # object storage: every part object of the run
        table = storage.read_source(results_dir, REQUESTS, [run_id], REQUESTS_SCHEMA)
        return {(str(c), int(i), bool(w)) for c, i, w in zip(
            *(table.column(n).to_pylist() for n in ("cell", "iteration", "warmup")), strict=True)}
    done: Done = set()
    for path in sorted(requests_folder(results_dir, run_id).glob("*.parquet")):
        table = pq.read_table(path, columns=["cell", "iteration", "warmup"])
        for row in table.to_pylist():
            done.add((str(row["cell"]), int(row["iteration"]), bool(row["warmup"])))
    return done


def first_difference(old: Any, new: Any, path: str = "") -> str | None:
    """The first key path where two configs differ, or None."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            found = first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if old == new else (path or "<root>")


def check_same_config(record: RunRecord, cfg: Mapping[str, Any]) -> None:
    """Refuse to resume with a different config: the rows would not be comparable."""
    old = {k: v for k, v in (yaml.safe_load(record.config_yaml) or {}).items() if k != "resume"}
    new = {k: v for k, v in cfg.items() if k != "resume"}
    differs = first_difference(old, new)
    if differs:
        raise ConfigError(f"resume: {differs} differs from run {record.run_id}'s config; "
                          "resume with the same overrides")
