"""Per-run metric summaries (analysis/52_summaries.sql), kept under <results_dir>/summaries/.

``latlab compare`` needs of each (run, cell, metric) its count, mean, median, spread and a
band of sorted values around the median: a few thousand numbers where the run may hold
millions. They are computed once per run, by the end of ``latlab run`` (runs of at least
PRECOMPUTE_ROWS requests) or else by the first compare, and kept as

    <results_dir>/summaries/<run_id>/<fingerprint>.parquet

where the fingerprint hashes SUMMARY_VERSION, the SQL that computes a summary and the name,
size and modification time of each of the run's request files. Compacted runs (a day's file
holds many runs, runner/results/compact.py) are summarized on every compare. A resume adds
files, so the fingerprint changes and the summary is computed again; so it is after an upgrade that
changes the SQL, or for files copied without their times. Derived data only: deleting the
folder loses nothing. Results in object storage are summarized on every
compare (nothing is written there).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import duckdb

from latlab.runner.results.layout import is_compacted, summaries_folder

SUMMARY_VERSION = 1  # bump when this module changes what a kept file holds
PRECOMPUTE_ROWS = 10_000  # `latlab run` summarizes runs this large (compare: ~25 ms per 10k rows)
TABLE = "compare_summaries"  # the table load_summaries fills
NEEDS = ("metric_summaries_of",)  # the views (macros) load_summaries reads
# metric_summaries_of's columns, spelled out: binding the macro to learn them costs ~30 ms
# per compare. Rows go in BY NAME: a column reordered in the SQL still lands in its place, and
# one added or renamed fails loudly here.
COLUMNS = ("run_id VARCHAR, cell VARCHAR, metric VARCHAR, n BIGINT, mean DOUBLE, p50 DOUBLE, "
           "stddev DOUBLE, below BIGINT, band DOUBLE[]")


@functools.cache
def definition() -> bytes:
    """The SQL a summary is computed by (the analysis/*.sql files NEEDS draws in)."""
    from latlab.analysis.query import sql_files

    return b"".join(f.read_bytes() for f in sql_files(set(), NEEDS))


def fingerprint(files: Sequence[str]) -> str:
    """A hash of SUMMARY_VERSION, the SQL definition (a change to it makes every kept
    summary stale) and each file's name, size and modification time."""
    digest = hashlib.sha256(f"latlab-summary-v{SUMMARY_VERSION}".encode())
    digest.update(definition())
    for name in sorted(files):
        stat = os.stat(name)
        digest.update(f"{Path(name).name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:32]


def run_fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """run id -> fingerprint of its request files, for every run whose files ``con``'s views
    read (the list fixed when the results were opened: files written since are in neither the
    views nor the print). Empty for results in object storage."""
    by_run: dict[str, list[str]] = defaultdict(list)
    for name in request_files(con):  # a compacted day holds many runs: none kept
        if not is_compacted(name):
            by_run[Path(name).parent.name].append(name)
    return {run: fingerprint(names) for run, names in by_run.items()}


def request_files(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The request files ``con``'s views read."""
    (files,) = con.execute("SELECT getvariable('latlab_request_files')").fetchone() or (None,)
    return list(files or [])


def load_summaries(con: duckdb.DuckDBPyConnection) -> None:
    """Table TABLE: the summary rows of every run ``con`` reads (analysis/query.py open_results),
    from its kept file where the fingerprint matches, else computed from its rows (and kept,
    where the results dir is writable)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TABLE} ({COLUMNS})")
    prints = run_fingerprints(con)
    if not prints:  # object storage (or no request rows): nothing kept
        con.execute(f"INSERT INTO {TABLE} BY NAME FROM metric_summaries_of([])")
        return
    (where,) = con.execute("SELECT getvariable('latlab_results_dir')").fetchone() or ("",)
    results_dir = Path(where)
    kept = {run: path for run, fp in prints.items()
            if (path := summaries_folder(results_dir, run) / f"{fp}.parquet").is_file()}
    if kept and not _read_kept(con, list(kept.values())):
        kept = {}
    todo = sorted(set(prints) - set(kept))
    compacted = any(is_compacted(f) for f in request_files(con))  # computed on each compare
    if todo or compacted:  # every run not kept (by the rows' run_id: a renamed folder counts)
        con.execute(f"INSERT INTO {TABLE} BY NAME FROM metric_summaries_of($kept)",
                    {"kept": list(kept)})
    for run in todo:
        keep(con, results_dir, run, prints[run])


def _read_kept(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> bool:
    """Append the kept summaries to TABLE; False (and nothing appended) if one is unreadable."""
    try:
        con.execute(f"INSERT INTO {TABLE} BY NAME FROM read_parquet($files)",
                    {"files": [str(p) for p in paths]})
    except duckdb.Error:
        return False
    return True


def keep(con: duckdb.DuckDBPyConnection, results_dir: Path, run_id: str, stamp: str) -> None:
    """Write ``run_id``'s rows of TABLE as its summary file (atomically), removing older
    ones; a results dir that cannot be written to is left as it is."""
    folder = summaries_folder(results_dir, run_id)
    target = folder / f"{stamp}.parquet"
    partial = folder / f".{stamp}.{os.getpid()}.partial"
    rows = con.table(TABLE).filter(duckdb.ColumnExpression("run_id")
                                   == duckdb.ConstantExpression(run_id))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        rows.write_parquet(str(partial))
        os.replace(partial, target)
        for old in folder.glob("*.parquet"):
            if old != target:
                old.unlink(missing_ok=True)
    except (OSError, duckdb.Error):
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def summarize_run(results_dir: Path, run_id: str) -> None:
    """Keep ``run_id``'s summary now (`latlab run` calls this for large runs)."""
    from latlab.analysis.query import open_results

    con = open_results(results_dir, [run_id], needs=NEEDS)
    try:
        load_summaries(con)
    finally:
        con.close()
