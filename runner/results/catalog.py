"""Which files hold which runs: a run's own files (``requests/<run_id>/``, ``runs/<run_id>``)
or, once compacted, its UTC day's current generation (layout.py). The one place readers and
the compaction learn that, so both apply the same rules:

- a day's current generation is its highest one whose ``runs`` file exists;
- a run listed in it is read from it only: its own files, if a compaction was killed
  before it removed them, are ignored (never counted twice);
- older generations and unfinished newer ones are ignored (never counted twice either).

Days are found by folder name, so a reader of the last week opens the last week's days only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from latlab.runner.results.layout import (
    DATASETS,
    REQUESTS,
    RUNS,
    SPANS,
    compacted_folder,
    dataset_folder,
    generation_path,
    parse_generation,
    run_day,
    run_record_path,
    run_started,
    runs_folder,
)


@dataclass(frozen=True)
class Generation:
    """A day's compacted files: ``folder``/<dataset>-<number>.parquet."""

    folder: Path
    number: int

    @property
    def day(self) -> str:
        return self.folder.name

    def path(self, dataset: str) -> Path:
        return generation_path(self.folder, dataset, self.number)


@dataclass
class Sources:
    """The files holding a selection of runs. ``partial``: a compacted file also holds runs
    not selected, so rows must be filtered by run id."""

    requests: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    spans: list[str] = field(default_factory=list)
    compacted: list[Generation] = field(default_factory=list)
    partial: bool = False
    unreadable: list[Path] = field(default_factory=list)  # compacted runs files: days skipped


def own_files(results_dir: Path, dataset: str, run_id: str) -> list[str]:
    """A run's own files of ``dataset`` (its part files; its record for runs), sorted."""
    if dataset == RUNS:
        path = run_record_path(results_dir, run_id)
        return [str(path)] if path.is_file() else []
    folder = dataset_folder(results_dir, dataset, run_id)
    return sorted(str(p) for p in folder.glob("*.parquet") if p.is_file())


class Catalog:
    """The runs under a local results dir and the files that hold them (read lazily, once)."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = Path(results_dir)
        self._packed: dict[str, frozenset[str]] = {}
        self._generations: dict[str, Generation | None] = {}
        self.unreadable: list[Path] = []  # compacted runs files that could not be read

    @functools.cached_property
    def days(self) -> list[str]:
        """Every compacted day's folder name (YYYY-MM-DD), sorted."""
        root = compacted_folder(self.results_dir)
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    def generation(self, day: str) -> Generation | None:
        """``day``'s current generation (its folder is listed once, when first asked)."""
        if day not in self._generations:
            folder = compacted_folder(self.results_dir) / day
            known = day in self.days
            self._generations[day] = current_generation(folder) if known else None
        return self._generations[day]

    @property
    def generations(self) -> dict[str, Generation]:
        """day -> its current generation, for every day that has one (lists every day)."""
        found = ((day, self.generation(day)) for day in self.days)
        return {day: gen for day, gen in found if gen is not None}

    def packed_ids(self, day: str) -> frozenset[str]:
        """The run ids in ``day``'s current generation (none if it has none)."""
        if day not in self._packed:
            gen = self.generation(day)
            ids = None if gen is None else _ids_in(gen.path(RUNS))
            if gen is not None and ids is None:
                self.unreadable.append(gen.path(RUNS))
            self._packed[day] = ids or frozenset()
        return self._packed[day]

    def is_packed(self, run_id: str) -> bool:
        day = run_day(run_id)
        return day is not None and run_id in self.packed_ids(day)

    @functools.cached_property
    def own_ids(self) -> list[str]:
        """Every run with its own requests folder or record, compacted or not, sorted."""
        requests_dir, runs_dir = self.results_dir / REQUESTS, runs_folder(self.results_dir)
        ids = {p.name for p in requests_dir.glob("*/") if p.is_dir()}
        ids |= {p.stem for p in runs_dir.glob("*.parquet") if p.is_file()}
        return sorted(ids)

    def has_all(self, run_ids: Sequence[str]) -> bool:
        """Whether every id in ``run_ids`` is exactly a run's (no prefix)."""
        own = set(self.own_ids)
        return all(r in own or self.is_packed(r) for r in run_ids)

    def loose_ids(self) -> list[str]:
        """The runs read from their own files (not in a current generation)."""
        return [r for r in self.own_ids if not self.is_packed(r)]

    def leftover_ids(self) -> list[str]:
        """Compacted runs whose own files are still there (removed after a grace period)."""
        return [r for r in self.own_ids if self.is_packed(r)]

    def run_ids(self, since: datetime | None = None) -> list[str]:
        """Every run (started at or after ``since``; runs whose id has no time always), sorted."""
        day = None if since is None else f"{since:%Y-%m-%d}"
        ids = set(self.loose_ids())
        for d in self.days:
            if day is None or d >= day:
                ids |= self.packed_ids(d)
        return sorted(r for r in ids if since is None or _started_since(r, since))

    def latest_ids(self, count: int) -> list[str]:
        """The ``count`` latest runs (sorted), reading the newest compacted days only."""
        ids = set(self.loose_ids())
        for day in reversed(self.days):
            if sum(1 for r in ids if (run_day(r) or "") >= day) >= count:
                break
            ids |= self.packed_ids(day)
        return sorted(ids)[-count:]

    def sources(self, run_ids: Sequence[str], datasets: Iterable[str] = DATASETS) -> Sources:
        """The files that hold ``run_ids``: each compacted day once, the others' own files
        (of ``datasets`` only; the runs records always: they say which runs are usable)."""
        out, by_day = Sources(), _by_day(r for r in run_ids if self.is_packed(r))
        for day, chosen in sorted(by_day.items()):
            out.compacted += [g for g in [self.generation(day)] if g is not None]
            out.partial = out.partial or len(chosen) < len(self.packed_ids(day))
        out.unreadable = list(self.unreadable)
        loose = [r for r in run_ids if not self.is_packed(r)]
        wanted = {*datasets, RUNS}
        out.requests, out.runs, out.spans = (
            [f for r in loose for f in own_files(self.results_dir, d, r)] if d in wanted else []
            for d in (REQUESTS, RUNS, SPANS))
        return out


def current_generation(folder: Path) -> Generation | None:
    """The highest generation in a day folder whose runs file exists (complete)."""
    numbers = [parsed[1] for p in folder.iterdir()
               if (parsed := parse_generation(p.name)) is not None and parsed[0] == RUNS]
    return Generation(folder, max(numbers)) if numbers else None


def _ids_in(runs_file: Path) -> frozenset[str] | None:
    """The run ids in a compacted runs file; None if it cannot be read (analysis names it)."""
    try:
        ids = pq.ParquetFile(runs_file).read(columns=["run_id"]).column(0).to_pylist()
    except (pa.ArrowException, OSError):
        return None
    return frozenset(str(i) for i in ids)


def _started_since(run_id: str, since: datetime) -> bool:
    started = run_started(run_id)
    return started is None or started >= since


def _by_day(run_ids: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in run_ids:
        out.setdefault(str(run_day(r)), []).append(r)
    return out
