"""Damaged results are named, never read: each Parquet file an analysis command would read is
checked against the versioned schema (runner/core/records.py, runner/core/spans.py) first,
and a file that fails is skipped with a one-line warning naming it and why:

- not Parquet at all: zero bytes, truncated, another format;
- a column of the wrong type (``ttft_ms`` as text);
- a foreign schema: a column latlab never writes, or no ``run_id``;
- a request or span part whose run has no (usable) ``runs`` record.

Older files that lack newer columns stay readable (the views add them as NULL). Checking
reads each file's footer once; the numbers of the remaining files are unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from latlab.runner.core.records import REQUESTS_SCHEMA, RUNS_SCHEMA
from latlab.runner.core.spans import SPANS_SCHEMA

KIND_OF = {"string": "text", "large_string": "text", "bool": "bool"}


def kind(arrow_type: pa.DataType) -> str:
    """A type's family: files from other writers may differ in width or unit, not family."""
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"list<{kind(arrow_type.value_type)}>"
    return KIND_OF.get(str(arrow_type), str(arrow_type))


def problem(path: Path, schema: pa.Schema) -> str | None:
    """Why ``path`` is not a usable file of this dataset and run, or None."""
    try:
        found = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        return f"not a readable Parquet file ({str(exc).splitlines()[0][:120]})"
    if "run_id" not in found.names:
        return "foreign schema: no run_id column"
    expected = {f.name: f.type for f in schema}
    for field in found:
        if field.name not in expected:
            return f"foreign schema: column {field.name!r} is not a latlab column"
        if kind(field.type) != kind(expected[field.name]) and not pa.types.is_null(field.type):
            return (f"column {field.name!r} is {field.type}, expected "
                    f"{expected[field.name]}")
    return None


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


def checked_sources(requests: list[str], runs: list[str],
                    spans: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The request, run and span files an analysis may read (analysis/query.py)."""
    run_of = {f: Path(f).parent.name for f in [*requests, *spans]}
    run_of.update({f: Path(f).stem for f in runs})
    runs = usable(runs, RUNS_SCHEMA)
    recorded = {run_of[f] for f in runs}
    requests = usable(without_record(requests, run_of, recorded), REQUESTS_SCHEMA)
    spans = usable(without_record(spans, run_of, recorded), SPANS_SCHEMA)
    return requests, runs, spans
