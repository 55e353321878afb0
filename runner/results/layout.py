"""Where results live under ``results_dir``: the one definition of the layout.

    requests/<run_id>/part-<seq>-<pid>-<rand>.parquet   one row per request (results/write.py)
    spans/<run_id>/part-<seq>-<pid>-<rand>.parquet      one row per session step (span_writer.py)
    runs/<run_id>.parquet                               the run record
    summaries/<run_id>/<fingerprint>.parquet            per-run metric summaries (analysis)
    compacted/<YYYY-MM-DD>/<dataset>-<gen>.parquet      finished runs of one UTC day, merged

A long history (a monitor's rounds: one run every few minutes) is kept compact by
results/compact.py: the finished runs started on one UTC day (the day in the run id) are
merged into one generation of that day's folder, ``requests-<gen>``, ``spans-<gen>`` (when
there are spans) and ``runs-<gen>`` (the runs' records), which replaces the runs' own files.
A generation is complete once its ``runs`` file exists (written last, after the others);
readers (results/catalog.py) take each day's highest complete generation and ignore older
generations and the own files of the runs it holds, so a compaction killed at any point
never loses nor doubles a row.

``results_dir`` is a local folder or ``s3://bucket/prefix`` (results/storage.py).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from pathlib import Path

REQUESTS, SPANS, RUNS, SUMMARIES = "requests", "spans", "runs", "summaries"
COMPACTED = "compacted"
PER_RUN_FOLDERS = (REQUESTS, SPANS)  # datasets kept as a folder of part files per run
DATASETS = (REQUESTS, SPANS, RUNS)  # a generation's files, in the order they are written
_STARTED = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_GENERATION = re.compile(r"^(requests|spans|runs)-(\d{6})\.parquet$")


def requests_folder(results_dir: Path | str, run_id: str) -> Path:
    return Path(results_dir) / REQUESTS / run_id


def spans_folder(results_dir: Path | str, run_id: str) -> Path:
    return Path(results_dir) / SPANS / run_id


def runs_folder(results_dir: Path | str) -> Path:
    return Path(results_dir) / RUNS


def run_record_path(results_dir: Path | str, run_id: str) -> Path:
    return runs_folder(results_dir) / f"{run_id}.parquet"


def summaries_folder(results_dir: Path | str, run_id: str) -> Path:
    return Path(results_dir) / SUMMARIES / run_id


def dataset_folder(results_dir: Path | str, dataset: str, run_id: str) -> Path:
    """The part-file folder of ``run_id`` in a per-run dataset (requests or spans)."""
    return Path(results_dir) / dataset / run_id


@functools.lru_cache(maxsize=1 << 18)  # a catalog asks about each id several times
def run_started(run_id: str) -> datetime | None:
    """The start time encoded in a run id (runner/app/run.py new_run_id), if it has one."""
    found = _STARTED.match(run_id)
    if found is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in found.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:  # 20261332T...: not a date
        return None


@functools.lru_cache(maxsize=1 << 18)
def run_day(run_id: str) -> str | None:
    """The UTC day (``YYYY-MM-DD``) a run is compacted into: its id's; None for ids
    without a start time (never compacted)."""
    started = run_started(run_id)
    return None if started is None else f"{started:%Y-%m-%d}"


def compacted_folder(results_dir: Path | str) -> Path:
    return Path(results_dir) / COMPACTED


def day_folder(results_dir: Path | str, day: str) -> Path:
    return compacted_folder(results_dir) / day


def generation_path(folder: Path, dataset: str, number: int) -> Path:
    """One dataset's file of generation ``number`` in a day folder."""
    return folder / f"{dataset}-{number:06d}.parquet"


def parse_generation(name: str) -> tuple[str, int] | None:
    """(dataset, generation) of a compacted file name; None for any other name."""
    found = _GENERATION.match(name)
    return None if found is None else (found.group(1), int(found.group(2)))


def is_compacted(path: Path | str) -> bool:
    """Whether ``path`` is a compacted file (it holds many runs), not a run's own."""
    return Path(path).parent.parent.name == COMPACTED
