"""Write: append rows to Parquet as the run goes, so a crash loses only what is in flight.

Layout under ``results_dir``::

    requests/<run_id>/part-<seq>-<pid>-<rand>.parquet   small batches, renamed into place
    runs/<run_id>.parquet                                one row of run metadata

Every file is written to a ``.tmp`` name and ``os.replace``d, so any ``*.parquet``
present is complete and readable, whatever happens to the process.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from runner.errors import ResultsError
from runner.records import REQUESTS_SCHEMA, RequestRow
from runner.secrets import redact, secret_values

RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("started_at", pa.timestamp("us", tz="UTC")),
    ("ended_at", pa.timestamp("us", tz="UTC")), ("status", pa.string()),
    ("run_name", pa.string()), ("latlab_version", pa.string()), ("host", pa.string()),
    ("python_version", pa.string()), ("config_yaml", pa.string()),
    ("overrides", pa.list_(pa.string())), ("choices_json", pa.string()),
    ("experiment", pa.string()), ("sweep_job", pa.int64()), ("cells", pa.int64()),
    ("requests", pa.int64()), ("errors", pa.int64()), ("emulator_json", pa.string()),
    ("resumes", pa.int64()),
])


def atomic_write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` via a temporary name and a rename."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ResultsError(f"results_dir: cannot write {path}: {exc.strerror or exc}") from exc


def ensure_writable(results_dir: Path) -> None:
    """Fail before the first request if the results dir cannot take files."""
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        probe = results_dir / f".latlab-write-probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ResultsError(f"results_dir: {results_dir} is not writable: "
                           f"{exc.strerror or exc}") from exc


class RequestWriter:
    """Buffers rows and flushes them as small Parquet files (by count or by age)."""

    def __init__(self, results_dir: Path, run_id: str, batch_rows: int = 64,
                 max_age_s: float = 2.0) -> None:
        self.folder = results_dir / "requests" / run_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.batch_rows, self.max_age_s = batch_rows, max_age_s
        self.buffer: list[RequestRow] = []
        self.oldest = time.monotonic()
        self.files = 0
        self.rows_written = 0
        self.secrets = secret_values()

    def add(self, row: RequestRow) -> None:
        row.error_message = redact(row.error_message, self.secrets)
        if not self.buffer:
            self.oldest = time.monotonic()
        self.buffer.append(row)
        if len(self.buffer) >= self.batch_rows or time.monotonic() - self.oldest > self.max_age_s:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        rows = [dataclasses.asdict(r) for r in self.buffer]
        table = pa.Table.from_pylist(rows, schema=REQUESTS_SCHEMA)
        name = f"part-{self.files:05d}-{os.getpid()}-{secrets.token_hex(3)}.parquet"
        atomic_write_table(table, self.folder / name)
        self.files += 1
        self.rows_written += len(self.buffer)
        self.buffer = []


@dataclass
class RunRecord:
    """The ``runs`` row of one run; rewritten at the end with status and counts."""

    run_id: str
    started_at: Any
    ended_at: Any = None
    status: str = "running"
    run_name: str | None = None
    latlab_version: str = ""
    host: str = ""
    python_version: str = ""
    config_yaml: str = ""
    overrides: list[str] = dataclasses.field(default_factory=list)
    choices_json: str = "{}"
    experiment: str | None = None
    sweep_job: int | None = None
    cells: int = 0
    requests: int = 0
    errors: int = 0
    emulator_json: str | None = None
    resumes: int = 0


def write_run_record(results_dir: Path, record: RunRecord) -> None:
    folder = results_dir / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([dataclasses.asdict(record)], schema=RUNS_SCHEMA)
    atomic_write_table(table, folder / f"{record.run_id}.parquet")
