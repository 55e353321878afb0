"""Is a Parquet file a usable file of a latlab dataset? Checked against the versioned schema
(runner/core/records.py, runner/core/spans.py) by its footer alone: the analysis commands
skip a file that fails (analysis/integrity.py), the compaction leaves its run as it is."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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
