"""Damaged results are named, never read: each Parquet file an analysis command would read is
checked against the versioned schema (runner/core/records.py, runner/core/spans.py) first,
and a file that fails is skipped with a one-line warning naming it and why:

- not Parquet at all: zero bytes, truncated, another format;
- a column of the wrong type (``ttft_ms`` as text);
- a foreign schema: a column latlab never writes, or no ``run_id``;
- a request or span part whose run has no (usable) ``runs`` record;
- a compacted day's generation whose ``runs`` file is unusable: all of its files.

Older files that lack newer columns stay readable (the views add them as NULL). Checking
reads each file's footer once; the numbers of the remaining files are unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa

from latlab.runner.core.records import REQUESTS_SCHEMA, RUNS_SCHEMA
from latlab.runner.core.spans import SPANS_SCHEMA
from latlab.runner.results.catalog import Generation, Sources
from latlab.runner.results.checks import problem
from latlab.runner.results.layout import REQUESTS, RUNS, SPANS


def warn(path: str | Path, why: str) -> None:
    print(f"latlab: warning: skipping {path}: {why}", file=sys.stderr)  # noqa: T201


def usable(files: Iterable[str], schema: pa.Schema) -> list[str]:
    """The files that pass ``problem``; a warning for each that does not."""
    kept = []
    for name in files:
        why = problem(Path(name), schema)
        if why:
            warn(name, why)
        else:
            kept.append(name)
    return kept


def without_record(files: Sequence[str], run_of: dict[str, str],
                   recorded: set[str]) -> list[str]:
    """Parts whose run has no usable runs record are skipped, each named."""
    kept = []
    for name in files:
        if run_of[name] in recorded:
            kept.append(name)
        else:
            warn(name, f"run {run_of[name]} has no usable runs record "
                       f"(runs/{run_of[name]}.parquet)")
    return kept


def checked_sources(sources: Sources) -> tuple[list[str], list[str], list[str]]:
    """The request, run and span files an analysis may read (analysis/query.py): the runs'
    own files, then each compacted day's."""
    requests, runs, spans = checked_own(sources.requests, sources.runs, sources.spans)
    for path in sources.unreadable:
        warn(path, f"{problem(path, RUNS_SCHEMA) or 'unreadable'}: the runs compacted into "
                   f"{path.parent.name} are skipped")
    for gen in sources.compacted:
        add_generation(gen, requests, runs, spans)
    return requests, runs, spans


def add_generation(gen: Generation, requests: list[str], runs: list[str],
                   spans: list[str]) -> None:
    """Append the usable files of ``gen`` (none if its runs file is unusable)."""
    runs_file = str(gen.path(RUNS))
    if not usable([runs_file], RUNS_SCHEMA):
        return
    runs.append(runs_file)
    for dataset, schema, files in ((REQUESTS, REQUESTS_SCHEMA, requests),
                                   (SPANS, SPANS_SCHEMA, spans)):
        path = gen.path(dataset)
        if path.is_file():
            files += usable([str(path)], schema)


def checked_own(requests: list[str], runs: list[str],
                spans: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The runs' own request, run and span files that are usable."""
    run_of = {f: Path(f).parent.name for f in [*requests, *spans]}
    run_of.update({f: Path(f).stem for f in runs})
    runs = usable(runs, RUNS_SCHEMA)
    recorded = {run_of[f] for f in runs}
    requests = usable(without_record(requests, run_of, recorded), REQUESTS_SCHEMA)
    spans = usable(without_record(spans, run_of, recorded), SPANS_SCHEMA)
    return requests, runs, spans
