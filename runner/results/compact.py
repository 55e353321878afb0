"""``latlab compact`` (and ``latlab monitor``, once an hour): merge finished runs' small files
into one generation per UTC day (layout.py), so a year of 5-minute rounds is ~365 files per
dataset instead of ~105 k, and a reader of the last week opens the last week's days only.

Nothing measured is lost: every row and column of the runs' own files (and of the day's
previous generation) goes into the new generation, by Arrow, schema as written. Crash safety:
the new generation's files are written (each atomically) before its ``runs`` file, which
completes it; only then are the superseded files (the older generation, the runs' own
files) garbage, and readers (catalog.py) ignore them from that moment. They are removed by a
later pass once the generation is ``grace_s`` old, so a reader that listed them just before
still finds them. Only runs whose record says ``finished`` are merged (an interrupted run
may be resumed), and only small ones (SMALL_RUN_BYTES: a large run is few files per row
already); a run with an unreadable file stays as it is (analysis names the file).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from latlab.runner.core.durations import parse_duration
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.records import REQUESTS_SCHEMA, RUNS_SCHEMA
from latlab.runner.core.spans import SPANS_SCHEMA
from latlab.runner.results import storage
from latlab.runner.results.catalog import Catalog, Generation, own_files
from latlab.runner.results.checks import problem
from latlab.runner.results.layout import (
    DATASETS,
    REQUESTS,
    RUNS,
    SPANS,
    compacted_folder,
    dataset_folder,
    day_folder,
    generation_path,
    parse_generation,
    run_day,
    run_record_path,
    run_started,
    summaries_folder,
)
from latlab.runner.results.write import atomic_write_table

SMALL_RUN_BYTES = 32 << 20  # larger runs keep their own files (a monitor round is ~20 kB)
GRACE_S = 600.0  # superseded files stay this long after their replacement is complete
SCHEMAS = {REQUESTS: REQUESTS_SCHEMA, SPANS: SPANS_SCHEMA, RUNS: RUNS_SCHEMA}
Tables = dict[str, list[pa.Table]]


@dataclass
class Compacted:
    """What one pass did."""

    runs: int = 0
    days: list[str] = field(default_factory=list)
    removed: int = 0  # superseded files removed
    busy: bool = False  # another compaction held the lock: nothing done

    def summary(self) -> str:
        if self.busy:
            return "another compaction is running: nothing done"
        days = f" into {len(self.days)} day(s) ({', '.join(self.days)})" if self.days else ""
        return f"compacted {self.runs} run(s){days}; removed {self.removed} superseded file(s)"


def compact(results_dir: Path, before: datetime, grace_s: float = GRACE_S) -> Compacted:
    """Merge every finished run started before ``before``; remove what is superseded."""
    if storage.is_remote(results_dir):
        raise ConfigError("--results: results in object storage are not compacted "
                          "(compact a local copy)")
    compacted_folder(results_dir).mkdir(parents=True, exist_ok=True)
    with _locked(results_dir) as held:
        if not held:
            return Compacted(busy=True)
        out = Compacted()
        catalog = Catalog(results_dir)
        for day, run_ids in sorted(eligible(catalog, before).items()):
            merged = merge_day(catalog, day, run_ids)
            out.runs += merged
            out.days += [day] if merged else []
        out.removed = collect_garbage(Catalog(results_dir), grace_s)
    return out


@contextlib.contextmanager
def _locked(results_dir: Path) -> Iterator[bool]:
    """One compaction at a time per results dir (two would write the same generation)."""
    with (compacted_folder(results_dir) / ".lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def eligible(catalog: Catalog, before: datetime) -> dict[str, list[str]]:
    """day -> the small finished runs started that day, before ``before``, not compacted."""
    todo: dict[str, list[str]] = {}
    for run_id in catalog.loose_ids():
        started = run_started(run_id)
        if (started is not None and started < before and finished(catalog.results_dir, run_id)
                and small(catalog.results_dir, run_id)):
            todo.setdefault(f"{started:%Y-%m-%d}", []).append(run_id)
    return todo


def small(results_dir: Path, run_id: str) -> bool:
    """A run whose own files are small: merging a large run gains nothing (few files per
    row) and would hold it in memory."""
    names = [f for d in DATASETS for f in own_files(results_dir, d, run_id)]
    return sum(os.stat(f).st_size for f in names) <= SMALL_RUN_BYTES


def finished(results_dir: Path, run_id: str) -> bool:
    try:
        table = pq.read_table(run_record_path(results_dir, run_id), columns=["status"])
    except (pa.ArrowException, OSError):
        return False
    return bool(table.column(0).to_pylist() == ["finished"])


def merge_day(catalog: Catalog, day: str, run_ids: list[str]) -> int:
    """Write ``day``'s next generation: its current one plus ``run_ids``; runs merged."""
    current = catalog.generation(day)
    parts: Tables = {d: [] for d in DATASETS}
    if current is not None:
        tables = generation_tables(current)
        if tables is None:  # damaged: the day is left as it is (analysis names the file)
            return 0
        _extend(parts, tables)
    merged = 0
    for run_id in run_ids:
        tables = run_tables(catalog.results_dir, run_id)
        if tables is not None:
            _extend(parts, tables)
            merged += 1
    if merged:
        number = 1 if current is None else current.number + 1
        write_generation(day_folder(catalog.results_dir, day), number, parts)
    return merged


def generation_tables(gen: Generation) -> Tables | None:
    """A generation's files as tables; None if one of them cannot be read."""
    try:
        return {d: [pq.read_table(p)] for d in DATASETS if (p := gen.path(d)).is_file()}
    except (pa.ArrowException, OSError):
        return None


def _extend(parts: Tables, more: Tables) -> None:
    for dataset, tables in more.items():
        parts[dataset] += tables


def run_tables(results_dir: Path, run_id: str) -> Tables | None:
    """A run's own files as tables; None if one of them is not a usable latlab file."""
    files = {d: own_files(results_dir, d, run_id) for d in DATASETS}
    if any(problem(Path(f), SCHEMAS[d]) for d, names in files.items() for f in names):
        return None
    try:
        return {d: [pq.read_table(f) for f in names] for d, names in files.items()}
    except (pa.ArrowException, OSError):
        return None


def write_generation(folder: Path, number: int, parts: Tables) -> None:
    """Each dataset's tables as one file of generation ``number``, the runs file last (it
    completes the generation). Tables are concatenated as written: columns an older file
    lacks are null in its rows, exactly as the views read them."""
    folder.mkdir(parents=True, exist_ok=True)
    for dataset in DATASETS:  # a killed compaction's unfinished files of this number
        generation_path(folder, dataset, number).unlink(missing_ok=True)
    for dataset in DATASETS:  # requests, spans, runs: the runs file is written last
        if parts[dataset]:
            table = pa.concat_tables(parts[dataset], promote_options="permissive")
            atomic_write_table(table, generation_path(folder, dataset, number))


def collect_garbage(catalog: Catalog, grace_s: float) -> int:
    """Remove what each day's current generation superseded, once it is ``grace_s`` old."""
    settled = {day: gen for day, gen in catalog.generations.items()  # readable: a damaged
               if _age(gen.path(RUNS)) >= grace_s and catalog.packed_ids(day)}  # one keeps all
    removed = sum(_remove_superseded(gen) for gen in settled.values())
    for run_id in catalog.leftover_ids():
        if run_day(run_id) in settled:
            removed += remove_own(catalog.results_dir, run_id)
    return removed


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _remove_superseded(gen: Generation) -> int:
    """Every other file of the day: older generations, and what a killed compaction left
    (an unfinished newer generation, temporary files; the lock says none is running)."""
    removed = 0
    for path in gen.folder.iterdir():
        if path.is_file() and parse_generation(path.name) not in _own_names(gen):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _own_names(gen: Generation) -> list[tuple[str, int]]:
    return [(d, gen.number) for d in DATASETS]


def remove_own(results_dir: Path, run_id: str) -> int:
    """A compacted run's own files (its record last) and its summaries (derived data)."""
    removed = 0
    for dataset in (REQUESTS, SPANS):
        for name in own_files(results_dir, dataset, run_id):
            Path(name).unlink(missing_ok=True)
            removed += 1
        with contextlib.suppress(OSError):
            dataset_folder(results_dir, dataset, run_id).rmdir()
    record = run_record_path(results_dir, run_id)
    if record.is_file():
        record.unlink()
        removed += 1
    shutil.rmtree(summaries_folder(results_dir, run_id), ignore_errors=True)
    return removed


def compact_command(results_dir: Path, older_than: str, grace: str) -> str:
    """``latlab compact``: merge the finished runs started more than ``older_than`` ago."""
    if not storage.is_remote(results_dir) and not results_dir.is_dir():
        raise ConfigError(f"--results: {results_dir} is not a directory (point it at a "
                          "results dir)")
    before = datetime.now(UTC) - timedelta(seconds=_duration(older_than, "--older-than"))
    return compact(results_dir, before, _duration(grace, "--grace")).summary()


def _duration(text: str, key: str) -> float:
    """A duration, or 0 (``0``: at once)."""
    return 0.0 if text.strip() in ("0", "0s") else parse_duration(text, key)
