"""The one query helper: open a results dir as DuckDB views, run SQL, render rows.

The metric definitions live in ``analysis/*.sql`` (loaded in filename order) and are
documented in docs/columns.md. Everything here is plumbing around them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from latlab.analysis import OUTPUT_FORMATS
from latlab.analysis.integrity import checked_sources
from latlab.analysis.objectives import create_objective_tables
from latlab.analysis.slo import GRADES, SLO_METRICS, default_slo, validate_slo
from latlab.runner.core.errors import ConfigError, ResultsError
from latlab.runner.core.records import REQUESTS_SCHEMA, RUNS_SCHEMA
from latlab.runner.core.spans import SPANS_SCHEMA
from latlab.runner.results.catalog import Catalog

SQL_DIR = Path(__file__).resolve().parent
Rows = tuple[list[str], list[tuple[Any, ...]]]
HISTORY_SLACK_S = 3600.0  # runs that started this long before a window still count


# ---------------------------------------------------------------- SLO


def _create_slo_table(con: duckdb.DuckDBPyConnection, slo: Mapping[str, Any]) -> None:
    con.execute(
        "CREATE TABLE slo_thresholds (grade VARCHAR, rank INT, ttft_p50_ms DOUBLE, "
        "ttft_p99_ms DOUBLE, output_tps_mean DOUBLE, error_rate DOUBLE)"
    )
    for rank, grade in enumerate(GRADES, start=1):
        values = [float(slo["thresholds"][grade][m]) for m in SLO_METRICS]
        con.execute("INSERT INTO slo_thresholds VALUES (?, ?, ?, ?, ?, ?)", [grade, rank, *values])


# ---------------------------------------------------------------- sources


def known_run_ids(results_dir: Path) -> list[str]:
    """Every run id with a requests directory or a runs file, or in a compacted day, sorted."""
    return Catalog(results_dir).run_ids() if results_dir.is_dir() else []


def recent_run_ids(results_dir: Path, seconds: float) -> list[str]:
    """Runs started within ``seconds`` (plus HISTORY_SLACK_S) of now, by their ids: only
    the compacted days of that span are opened."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds + HISTORY_SLACK_S)
    return Catalog(results_dir).run_ids(since) if results_dir.is_dir() else []


def latest_run_ids(results_dir: Path, count: int) -> list[str]:
    """The ``count`` latest run ids (sorted), from the newest compacted days only."""
    return Catalog(results_dir).latest_ids(count) if results_dir.is_dir() else []


def _selection(results_dir: Path, run_ids: Sequence[str] | None,
               catalog: Catalog | None) -> list[str]:
    """The run ids to read: ``run_ids`` resolved (exact ids need no listing of every run:
    a year of compacted days), or every run. ``catalog``: None for object storage."""
    if catalog is None:
        from latlab.runner.results import storage

        known = storage.run_ids(results_dir)
    elif run_ids and catalog.has_all(run_ids):
        return list(dict.fromkeys(run_ids))
    else:
        known = catalog.run_ids() if results_dir.is_dir() else []
    if not known:
        raise _no_results(results_dir)
    return resolve_run_ids(known, run_ids) if run_ids else known


def _no_results(results_dir: Path) -> ResultsError:
    return ResultsError(f"no results under {results_dir}: run `latlab run` first")


def resolve_run_ids(known: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """Map each wanted id (exact or unique prefix) to a known run id."""
    resolved: list[str] = []
    for want in wanted:
        matches = [want] if want in known else [k for k in known if k.startswith(want)]
        if len(matches) > 1:
            raise ResultsError(f"run id {want!r} is ambiguous: {_listing(matches)}")
        if not matches:
            raise ResultsError(f"unknown run id {want!r}; known: {_listing(known[::-1])}")
        if matches[0] not in resolved:
            resolved.append(matches[0])
    return resolved


def _listing(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" (and {len(ids) - limit} more)" if len(ids) > limit else "")


SOURCES = ("requests", "runs", "spans")


def _sources_used(needs: Sequence[str] | None) -> set[str]:
    """The sources the views in ``needs`` read (all without ``needs``): the others are
    left empty, their files not even listed."""
    if needs is None:
        return set(SOURCES)
    return {f.stem.partition("_")[2] for f in sql_files(set(), needs)} & set(SOURCES)


def _create_sources(
    con: duckdb.DuckDBPyConnection, results_dir: Path, run_ids: Sequence[str],
    catalog: Catalog | None, used: set[str],
) -> set[str]:
    """Point the source views at the selected files (of the sources in ``used``); return
    the sources that have none."""
    con.execute("CREATE TABLE latlab_selected_runs (run_id VARCHAR)")
    con.execute("SET VARIABLE latlab_run_filter = false")
    if catalog is None:  # object storage: read with pyarrow, not httpfs
        from latlab.runner.results import storage

        for name, schema in (("requests", REQUESTS_SCHEMA), ("runs", RUNS_SCHEMA),
                             ("spans", SPANS_SCHEMA)):
            table = storage.read_source(results_dir, name, list(run_ids), schema)
            con.from_arrow(table).create(name)
        return {"requests", "runs", "spans"}
    sources = catalog.sources(run_ids, used)
    if sources.partial:  # a compacted day holds runs not selected: latlab_rows filters
        con.execute("INSERT INTO latlab_selected_runs SELECT unnest(?::VARCHAR[])",
                    [list(run_ids)])
        con.execute("SET VARIABLE latlab_run_filter = true")
    request_files, run_files, span_files = checked_sources(sources)
    empty: set[str] = set()
    for name, files, schema in (
        ("requests", request_files, REQUESTS_SCHEMA),
        ("runs", run_files, RUNS_SCHEMA),
        ("spans", span_files, SPANS_SCHEMA),
    ):
        _create_empty(con, f"latlab_{name}_columns", schema)
        if files and name in used:
            con.execute(f"SET VARIABLE latlab_{name[:-1]}_files = ?", [files])
        else:  # read_parquet cannot read zero files: an empty typed table stands in
            _create_empty(con, name, schema)
            empty.add(name)
    return empty


_SQL_TYPES = {"string": "VARCHAR", "bool": "BOOLEAN", "int64": "BIGINT", "double": "DOUBLE",
              "timestamp[us, tz=UTC]": "TIMESTAMPTZ"}


def _create_empty(con: duckdb.DuckDBPyConnection, name: str, schema: Any) -> None:
    """An empty table with ``schema``'s columns, by DDL: DuckDB's from_arrow would import
    pandas where it is installed (0.5 s per command)."""
    columns = [(f.name, _sql_type(str(f.type))) for f in schema]
    if any(t is None for _, t in columns):  # a type not mapped here
        con.from_arrow(schema.empty_table()).create(name)
        return
    con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns)})")


def _sql_type(arrow_type: str) -> str | None:
    if arrow_type.startswith("list<item: ") and arrow_type.endswith(">"):
        item = _sql_type(arrow_type[len("list<item: "):-1])
        return None if item is None else f"{item}[]"
    return _SQL_TYPES.get(arrow_type)


def _is_remote(results_dir: Path) -> bool:
    """``s3://…`` results (latlab.runner.results.storage, imported only then: it costs ~0.2 s)."""
    if not str(results_dir).startswith("s3:"):
        return False
    from latlab.runner.results import storage

    return storage.is_remote(results_dir)


def sql_files(skip_sources: set[str], needs: Sequence[str] | None = None) -> list[Path]:
    """analysis/NN_name.sql in filename order, without the sources in ``skip_sources``;
    with ``needs`` (view or macro names), only the files that define them and the files
    those use (each view file binds its views at once: ~4 ms per use of ``requests``)."""
    files = sorted(SQL_DIR.glob("*.sql"))
    files = [f for f in files if f.stem.partition("_")[2] not in skip_sources]
    return files if needs is None else _needed_files(files, needs)


_DEFINES = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:VIEW|MACRO|TABLE)\s+(\w+)",
                      re.IGNORECASE)


def view_names() -> list[str]:
    """Every view analysis/*.sql defines, in file order (``latlab sql --help``)."""
    found = (m for f in sql_files(set()) for m in _DEFINES.finditer(f.read_text("utf-8")))
    return [m.group(1) for m in found if "VIEW" in m.group(0).upper()]


def _needed_files(files: list[Path], needs: Sequence[str]) -> list[Path]:
    """The files defining ``needs`` and, transitively, every file whose names they mention
    outside ``--`` comments."""
    texts = {f: re.sub(r"--[^\n]*", "", f.read_text(encoding="utf-8")) for f in files}
    words = {f: set(re.findall(r"\w+", text.lower())) for f, text in texts.items()}
    defined_in = {name.lower(): f for f, text in texts.items() for name in _DEFINES.findall(text)}
    wanted: set[Path] = set()
    todo = [defined_in[n.lower()] for n in needs if n.lower() in defined_in]  # else a table
    while todo:
        f = todo.pop()
        if f not in wanted:
            wanted.add(f)
            todo += [g for name, g in defined_in.items() if g != f and name in words[f]]
    return [f for f in files if f in wanted]


# ---------------------------------------------------------------- open


def create_views(con: duckdb.DuckDBPyConnection, sql_file: Path, results_dir: Path) -> None:
    """Run one view file; unreadable Parquet becomes a one-line ResultsError."""
    try:
        con.execute(sql_file.read_text(encoding="utf-8"))
    except (duckdb.InvalidInputException, duckdb.IOException) as exc:
        first = str(exc).splitlines()[0]
        raise ResultsError(f"results under {results_dir} are unreadable: {first} "
                           "(move the damaged file away and retry)") from exc


def open_results(
    results_dir: Path,
    run_ids: Sequence[str] | None = None,
    slo: Mapping[str, Any] | None = None,
    needs: Sequence[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views of analysis/*.sql over ``results_dir``; with
    ``needs``, only the views (and macros) named there and those they build on."""
    results_dir = Path(results_dir)
    slo = default_slo() if slo is None else slo
    validate_slo(slo)
    catalog = None if _is_remote(results_dir) else Catalog(results_dir)
    selected = _selection(results_dir, run_ids, catalog)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # every view re-binds read_parquet: cache the footers (files are immutable once renamed)
    con.execute("SET parquet_metadata_cache = true")
    con.execute("SET enable_progress_bar = false")  # it would print into csv/json output
    _create_slo_table(con, slo)
    create_objective_tables(con, slo)  # analysis/objectives.py: burn-rate windows
    con.execute("SET VARIABLE latlab_results_dir = ?", [str(results_dir)])
    empty_sources = _create_sources(con, results_dir, selected, catalog, _sources_used(needs))
    for sql_file in sql_files(empty_sources, needs):
        create_views(con, sql_file, results_dir)
    return con


def materialize(con: duckdb.DuckDBPyConnection, views: Mapping[str, str]) -> None:
    """Compute each view once into a table and point the view at it: what several queries
    of one command read is not recomputed for each (the data does not change). ``views``
    maps each view to the columns to keep ("*": all; fewer: DuckDB computes only those, and
    the view then has only those)."""
    for view, columns in views.items():
        con.execute(f"CREATE TABLE {view}__kept AS SELECT {columns} FROM {view}; "
                    f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {view}__kept")


def run_sql(con: duckdb.DuckDBPyConnection, sql: str) -> Rows:
    """Run ``sql``; a DuckDB error becomes a one-line ConfigError (ResultsError for I/O)."""
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall() if columns else []
    except duckdb.IOException as exc:
        raise ResultsError(_first_line(exc)) from exc
    except duckdb.Error as exc:
        raise ConfigError(_first_line(exc)) from exc
    return columns, rows


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------- render


def render(
    data: duckdb.DuckDBPyRelation | Rows, fmt: str, width: int | None = None
) -> str:
    """Rows as a rich ``table``, ``csv`` (with header) or ``json`` (a list of objects).

    Floats are rounded by ``round_float`` in every format. No trailing newline (print it).
    """
    check_format(fmt)
    if isinstance(data, duckdb.DuckDBPyRelation):
        columns, rows = list(data.columns), data.fetchall()
    else:
        columns, rows = data
    values = [[_plain(v) for v in row] for row in rows]
    if fmt == "csv":
        return _render_csv(columns, values)
    if fmt == "json":
        objects = [dict(zip(columns, row, strict=True)) for row in values]
        return json.dumps(objects, indent=2, default=str)
    return _render_table(columns, values, width)


def check_format(fmt: str) -> None:
    """ConfigError unless ``fmt`` is one of OUTPUT_FORMATS."""
    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"unknown output format {fmt!r}; use one of {', '.join(OUTPUT_FORMATS)}")


def round_float(value: float) -> float | None:
    """At least 3 decimals and 4 significant digits; NaN and infinities become None."""
    if not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    digits = max(3, 3 - math.floor(math.log10(abs(value))))
    return round(value, digits)


def _plain(value: Any) -> Any:
    """A JSON-friendly version of one DuckDB value."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return round_float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def _render_csv(columns: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_text(v) for v in row] for row in rows)
    return out.getvalue().removesuffix("\n")


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def table_width() -> int:
    """The terminal's width; unlimited when output goes to a file or a pipe (no truncation)."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size((200, 24)).columns
    return 1000


def _render_table(columns: list[str], rows: list[list[Any]], width: int | None) -> str:
    from rich import box  # here: csv and json need no rich (40 ms to import)
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, header_style="bold")
    for i, name in enumerate(columns):
        numeric = bool(rows) and all(_is_number(row[i]) for row in rows)
        table.add_column(name, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*("-" if v is None else _text(v) for v in row))
    out = io.StringIO()
    width = width or table_width()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    console.print(table)
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    return "\n".join(line for line in lines if line)
