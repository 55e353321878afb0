"""Write: append rows to Parquet as the run goes, so a crash loses only what is in flight.

Layout under ``results_dir``::

    requests/<run_id>/part-<seq>-<pid>-<rand>.parquet   small batches, renamed into place
    runs/<run_id>.parquet                                one row of run metadata

Every file is written to a ``.tmp`` name and ``os.replace``d, so any ``*.parquet``
present is complete and readable, whatever happens to the process. On object storage
(``results_dir=s3://bucket/prefix``, runner/results/storage.py) each file is one PUT, atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from latlab.runner.core.errors import ResultsError
from latlab.runner.core.records import (
    PARQUET_COMPRESSION,
    REQUESTS_SCHEMA,
    ROW_COLUMNS,
    RUNS_SCHEMA,
    RequestRow,
    RunRecord,
)
from latlab.runner.core.secrets import redact, secret_values
from latlab.runner.results import storage
from latlab.runner.results.layout import requests_folder, run_record_path, runs_folder


def rows_table(rows: list[dict[str, Any]], schema: pa.Schema = REQUESTS_SCHEMA) -> pa.Table:
    """Rows as a table; a value that does not fit its column (a number where text belongs,
    say) is stored as text, or null, rather than failing the batch: a measured row is never
    dropped for one bad field."""
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pa.Table.from_pylist([fitted(row, schema) for row in rows], schema=schema)


def fitted(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    out = dict(row)
    for column in schema:
        try:
            pa.array([out.get(column.name)], type=column.type)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
            out[column.name] = str(out[column.name]) if text else None
    return out


def atomic_write_table(table: pa.Table | list[dict[str, Any]], path: Path) -> None:
    """Write ``table`` (or request rows) to ``path`` via a temporary name and a rename."""
    if isinstance(table, list):
        table = rows_table(table)
    if storage.is_remote(path):
        storage.put_table(table, path)  # one PUT: an object appears whole or not at all
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        pq.write_table(table, tmp, compression=PARQUET_COMPRESSION)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ResultsError(f"results_dir: cannot write {path}: {exc.strerror or exc}") from exc


def ensure_writable(results_dir: Path) -> None:
    """Fail before the first request if the results dir cannot take files."""
    if storage.is_remote(results_dir):
        storage.check_writable(results_dir)
        return
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        probe = results_dir / f".latlab-write-probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ResultsError(f"results_dir: {results_dir} is not writable: "
                           f"{exc.strerror or exc}") from exc



_background: ThreadPoolExecutor | None = None


@functools.cache
def warm_up_arrow() -> None:
    """Do pyarrow's one-time work now, before any request is timed (once per process).
    Its first conversion of Python rows imports pandas where pandas is installed (~0.45 s,
    some 350 modules) and its first Parquet write loads the codec: done by the writer thread
    in the middle of a run, that held the GIL long enough to stall the timing event loop by
    up to 30 ms (a worker process's first batch)."""
    row = {"run_id": "warm-up", "started_at": datetime.now(UTC), "itl_ms": [1.0]}
    table = pa.Table.from_pylist([row], schema=REQUESTS_SCHEMA)
    pq.write_table(table, pa.BufferOutputStream(), compression=PARQUET_COMPRESSION)


def _background_writer() -> ThreadPoolExecutor:
    """One writer thread per process: encoding and writing Parquet off the event loop."""
    global _background
    if _background is None:
        _background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="latlab-writer")
    return _background


FLUSH_ROWS = 64  # workload.flush_rows: a batch is written when it has this many rows ...
FLUSH_S = 0.5  # workload.flush_s: ... or when its oldest row waited this long


def flush_bounds(workload: Any) -> dict[str, Any]:
    """The writer's bounds from a cell's workload: a crash (kill -9) loses at most the rows
    completed in the last ``flush_s`` seconds, never more than ``flush_rows``."""
    return {"batch_rows": int(workload.get("flush_rows") or FLUSH_ROWS),
            "max_age_s": float(workload.get("flush_s") or FLUSH_S)}


class RequestWriter:
    """Buffers rows and flushes them as small Parquet files (by count or by age).

    ``background=True`` (the runner's setting) writes full batches from a writer thread,
    so the event loop that times requests is not blocked by Parquet encoding; ``flush()``
    writes the rest and waits for every pending file. A batch whose file cannot be written
    (a full disk) goes back to the buffer and is tried again: rows are never dropped.
    """

    def __init__(self, results_dir: Path, run_id: str, batch_rows: int = FLUSH_ROWS,
                 max_age_s: float = FLUSH_S, background: bool = False) -> None:
        self.results_dir = results_dir
        self.folder = requests_folder(results_dir, run_id)
        if not storage.is_remote(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
        self.batch_rows, self.max_age_s, self.background = batch_rows, max_age_s, background
        self.buffer: list[RequestRow] = []
        self.pending: list[Future[None]] = []
        self.oldest = time.monotonic()
        self.files = 0
        self.rows_written = 0
        self.secrets = secret_values()
        self.unwritten: list[RequestRow] = []  # rows of failed writes (writer thread only)
        warm_up_arrow()

    def add(self, row: RequestRow) -> None:
        row.error_message = redact(row.error_message, self.secrets)
        if not self.buffer:
            self.oldest = time.monotonic()
        self.buffer.append(row)
        if len(self.buffer) >= self.batch_rows or time.monotonic() - self.oldest > self.max_age_s:
            self._write_batch(wait=not self.background)

    def flush(self) -> None:
        self._write_batch(wait=True)

    def flush_if_stale(self) -> None:
        """Write the buffer if its oldest row waited ``max_age_s`` (slow streams, a lull)."""
        if self.buffer and time.monotonic() - self.oldest > self.max_age_s:
            self._write_batch(wait=not self.background)

    @contextlib.asynccontextmanager
    async def flushing(self) -> AsyncIterator[None]:
        """While the block runs, no measured row waits in memory longer than ``max_age_s``."""
        async def tick() -> None:
            while True:
                await asyncio.sleep(self.max_age_s / 2)
                self.flush_if_stale()

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _write_batch(self, wait: bool) -> None:
        if self.buffer:
            name = f"part-{self.files:05d}-{os.getpid()}-{secrets.token_hex(3)}.parquet"
            future = _background_writer().submit(self._write_rows, self.buffer,
                                                 self.folder / name)
            self.pending.append(future)
            self.files += 1
            self.rows_written += len(self.buffer)
            self.buffer = []
        done = [f for f in self.pending if wait or f.done()]
        self.pending = [f for f in self.pending if f not in done]
        for future in done:
            future.exception()  # waits; a failed batch's rows are in ``unwritten``
        if wait and self.unwritten:  # a write failed: one more try, then say how many wait
            path = self.folder / f"part-{self.files:05d}-{os.getpid()}-retry.parquet"
            self.files += 1
            try:
                _background_writer().submit(self._write_rows, [], path).result()
            except (ResultsError, OSError) as exc:
                raise ResultsError(f"results_dir: {len(self.unwritten)} measured rows could "
                                   f"not be written: {exc}") from exc

    def _write_rows(self, batch: list[RequestRow], path: Path) -> None:
        """Writer thread: this batch and any rows an earlier failed write left behind."""
        rows, self.unwritten = self.unwritten + batch, []
        try:
            atomic_write_table([{n: getattr(r, n) for n in ROW_COLUMNS} for r in rows], path)
        except BaseException:
            self.unwritten = rows + self.unwritten  # tried again with the next batch
            raise


def write_run_record(results_dir: Path, record: RunRecord) -> None:
    folder = runs_folder(results_dir)
    if not storage.is_remote(folder):
        folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([dataclasses.asdict(record)], schema=RUNS_SCHEMA)
    atomic_write_table(table, run_record_path(results_dir, record.run_id))
