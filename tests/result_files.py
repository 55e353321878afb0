"""Read what a run wrote: request rows, the run record, and waiting for the first flush."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq


def request_rows(results: Path) -> list[dict[str, object]]:
    files = sorted((results / "requests").glob("*/*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def run_rows(results: Path) -> list[dict[str, object]]:
    return [r for f in sorted((results / "runs").glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def the_run(results: Path) -> dict[str, object]:
    (run,) = run_rows(results)
    return run


def wait_for_request_files(results: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not list(results.glob("requests/*/part-*.parquet")):
        assert time.monotonic() < deadline, "no request rows written in time"
        time.sleep(0.1)
