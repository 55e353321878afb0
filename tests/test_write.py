"""Parquet writing: small atomic files, clear errors for unwritable or damaged results."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from latlab.runner.core.errors import ResultsError
from latlab.runner.core.records import REQUESTS_SCHEMA, Measurement, RequestRow, RunRecord
from latlab.runner.results.write import RequestWriter, ensure_writable, write_run_record

ROOT = Path(__file__).resolve().parents[1]


def row(i: int) -> RequestRow:
    context = {"run_id": "r1", "cell": "c", "provider": "p", "api": "messages", "model": "m",
               "model_id": "m-1", "prompt": "x", "guardrail": "none", "stream": True,
               "concurrency": 1, "iteration": i, "warmup": False,
               "started_at": datetime.now(UTC)}
    return RequestRow.build(context, Measurement(ttft_ms=10.0 + i, itl_ms=[1.0, 2.0]))


def test_rows_flush_in_batches_of_complete_files(tmp_path: Path) -> None:
    writer = RequestWriter(tmp_path, "r1", batch_rows=3)
    for i in range(7):
        writer.add(row(i))
    files = sorted((tmp_path / "requests" / "r1").glob("*.parquet"))
    assert len(files) == 2 and writer.rows_written == 6  # the 7th waits in the buffer
    writer.flush()
    tables = [pq.read_table(f) for f in (tmp_path / "requests" / "r1").glob("*.parquet")]
    assert sum(t.num_rows for t in tables) == 7
    assert all(t.schema.equals(REQUESTS_SCHEMA) for t in tables)
    assert not list((tmp_path / "requests" / "r1").glob("*.tmp"))


def test_a_lone_buffered_row_is_written_by_the_timer_without_new_rows(tmp_path: Path) -> None:
    writer = RequestWriter(tmp_path, "r1", batch_rows=100, max_age_s=0.05)

    async def one_row_then_a_lull() -> None:
        async with writer.flushing():
            writer.add(row(0))
            await asyncio.sleep(0.3)  # no further rows arrive: a slow stream, a lull
            files = list((tmp_path / "requests" / "r1").glob("*.parquet"))
            assert len(files) == 1 and writer.rows_written == 1

    asyncio.run(one_row_then_a_lull())


def test_unwritable_results_dir_fails_before_the_first_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ResultsError, match="results_dir"):
        ensure_writable(blocker / "results")
    from in_process import latlab_here  # here: FIRST_BATCH imports this module in a fresh process

    done = latlab_here(["run", f"results_dir={blocker}/results"], capsys, tmp_path)
    assert done.returncode == 2 and "results_dir" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_damaged_parquet_is_named_and_skipped_not_a_traceback(tmp_path: Path) -> None:
    writer = RequestWriter(tmp_path, "r1")
    writer.add(row(0))
    writer.flush()
    write_run_record(tmp_path, RunRecord(run_id="r1", started_at=datetime.now(UTC)))
    (tmp_path / "requests" / "r1" / "part-broken.parquet").write_bytes(b"garbage")
    done = subprocess.run([sys.executable, "-m", "latlab", "sql",
                           "SELECT count(*) FROM requests", "--format", "csv",
                           "--results", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "part-broken.parquet" in done.stderr and done.stdout.split() == ["count_star()", "1"]


def test_every_column_is_documented() -> None:
    """docs/columns.md names every column of the three datasets (requests, runs, spans)."""
    from latlab.runner.core.records import REQUESTS_SCHEMA, RUNS_SCHEMA
    from latlab.runner.core.spans import SPANS_SCHEMA

    doc = (Path(__file__).resolve().parents[1] / "docs" / "columns.md").read_text()
    for schema in (REQUESTS_SCHEMA, RUNS_SCHEMA, SPANS_SCHEMA):
        assert [f.name for f in schema if f"`{f.name}`" not in doc] == []


FIRST_BATCH = """
import json, sys
from pathlib import Path
from latlab.runner.results.write import RequestWriter
from tests.test_write import row
writer = RequestWriter(Path(sys.argv[1]), "r1", batch_rows=1, background=True)
before = set(sys.modules)
writer.add(row(0))
writer.flush()
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_the_writer_thread_imports_nothing_mid_run(tmp_path: Path) -> None:
    """A new RequestWriter has done pyarrow's one-time work (the first conversion imports
    pandas where it is installed: ~350 modules, 0.45 s of the GIL), so the first batch,
    written by the writer thread while requests are timed, imports no module (fresh process)."""
    done = subprocess.run([sys.executable, "-c", FIRST_BATCH, str(tmp_path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_failed_write_keeps_its_rows_for_the_next_one(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer error (a full disk) never drops rows already measured: they are written
    with the next batch; a value that does not fit its column never fails a batch."""
    from latlab.runner.results import write

    writer = RequestWriter(tmp_path, "r1", batch_rows=2)
    real, calls = write.atomic_write_table, []

    def fail_once(rows: list[dict[str, object]], path: Path) -> None:
        calls.append(len(rows))
        if len(calls) == 1:
            raise write.ResultsError("results_dir: No space left on device")
        real(rows, path)

    monkeypatch.setattr(write, "atomic_write_table", fail_once)
    odd = row(9)
    odd.prompt_label = 3  # type: ignore[assignment]  # not a string: stored as "3"
    for r in [row(0), row(1), row(2), odd]:
        writer.add(r)
    writer.flush()
    rows = [r for f in (tmp_path / "requests" / "r1").glob("*.parquet")
            for r in pq.read_table(f).to_pylist()]
    assert calls[0] == 2 and len(calls) > 2 and len(rows) == 4  # retried, nothing lost
    assert "3" in {r["prompt_label"] for r in rows}


@pytest.mark.parametrize(("workload", "bounds"), [
    ({}, {"batch_rows": 64, "max_age_s": 0.5}),
    ({"flush_rows": 8, "flush_s": 0.1}, {"batch_rows": 8, "max_age_s": 0.1}),
])
def test_the_crash_bound_is_configurable(workload: dict[str, float],
                                         bounds: dict[str, float]) -> None:
    """What kill -9 can lose: at most flush_rows rows, none older than flush_s (README)."""
    from latlab.runner.results.write import flush_bounds

    assert flush_bounds(workload) == bounds
