"""latlab.analysis.query: results written by any latlab version stay readable by every view."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from latlab.analysis.query import open_results, run_sql
from latlab.runner.core.records import REQUESTS_SCHEMA

# The request columns of latlab's first schema (issue 2); every later column is newer.
FIRST_COLUMNS = (
    "run_id cell provider api model model_id prompt guardrail stream concurrency iteration "
    "warmup started_at connect_ms tls_ms ttfb_ms ttft_ms generation_ms total_ms itl_ms "
    "input_tokens output_tokens cache_read_tokens cache_write_tokens output_tps "
    "server_latency_ms stop_reason status error_type error_message request_id retries"
).split()


def first_schema_row(iteration: int, ttft: float) -> dict[str, object]:
    return {"run_id": "old1", "cell": "c", "provider": "anthropic", "api": "messages",
            "model": "haiku-4-5", "model_id": "claude-haiku-4-5", "prompt": "short",
            "guardrail": "none", "stream": True, "concurrency": 1, "iteration": iteration,
            "warmup": False, "started_at": datetime(2026, 1, 1, tzinfo=UTC), "ttft_ms": ttft,
            "total_ms": ttft + 100, "ttfb_ms": ttft / 2, "generation_ms": 100.0,
            "itl_ms": [10.0], "output_tokens": 11, "output_tps": 100.0, "status": 200,
            "retries": 0}


def write_first_schema_run(results: Path) -> None:
    schema = pa.schema([REQUESTS_SCHEMA.field(name) for name in FIRST_COLUMNS])
    rows = [first_schema_row(i, ttft) for i, ttft in enumerate([100.0, 300.0])]
    (results / "requests" / "old1").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema),
                   results / "requests" / "old1" / "part-0000.parquet")
    run = pa.table({"run_id": ["old1"], "started_at": [datetime(2026, 1, 1, tzinfo=UTC)],
                    "status": ["finished"]})
    (results / "runs").mkdir()
    pq.write_table(run, results / "runs" / "old1.parquet")


def test_first_schema_results_are_read_by_every_view(tmp_path: Path) -> None:
    write_first_schema_run(tmp_path)
    assert len(FIRST_COLUMNS) < len(REQUESTS_SCHEMA.names), "the fixture must lack newer columns"
    con = open_results(tmp_path)
    _, listed = run_sql(con, "SELECT view_name FROM duckdb_views() WHERE NOT internal")
    views = [row[0] for row in listed]
    assert {"requests", "runs", "cells", "grades"} <= set(views)
    for view in views:
        run_sql(con, f"SELECT * FROM {view}")  # binds: every column a view names exists
    assert run_sql(con, "SELECT n, ttft_p50_ms FROM cells")[1] == [(2, 200.0)]
    newest = REQUESTS_SCHEMA.names[-1]
    assert run_sql(con, f"SELECT count({newest}) FROM requests")[1] == [(0,)]


def test_needs_opens_only_the_views_a_command_reads(tmp_path: Path) -> None:
    """open_results(needs=…) runs the view files that define those names and the files
    they use; the empty source tables have the schema from_arrow would give them."""
    import duckdb

    from latlab.analysis.query import _create_empty
    from latlab.runner.core.records import RUNS_SCHEMA
    from latlab.runner.core.spans import SPANS_SCHEMA

    results = tmp_path / "results"
    write_first_schema_run(results)
    con = open_results(results, needs=("grades",))
    names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert {"requests", "measured", "cell_summary", "grades"} <= names
    assert not names & {"advice", "budget", "comparison", "session_times"}
    assert con.execute("SELECT cell, n FROM grades").fetchall() == [("c", 2)]
    for schema in (REQUESTS_SCHEMA, RUNS_SCHEMA, SPANS_SCHEMA):
        ddl, arrow = duckdb.connect(), duckdb.connect()
        _create_empty(ddl, "t", schema)
        arrow.from_arrow(schema.empty_table()).create("t")
        assert ddl.execute("DESCRIBE t").fetchall() == arrow.execute("DESCRIBE t").fetchall()


def test_metric_stats_for_some_metrics_equals_metric_stats(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_first_schema_run(results)
    con = open_results(results)
    some = con.execute("SELECT * FROM metric_stats_for(['ttft_ms', 'output_tps']) "
                       "ORDER BY metric").fetchall()
    every = con.execute("SELECT * FROM metric_stats WHERE metric IN ('ttft_ms', 'output_tps') "
                        "ORDER BY metric").fetchall()
    assert some == every == [("old1", "c", "output_tps", 2, 100.0, 100.0, 0.0),
                             ("old1", "c", "ttft_ms", 2, 200.0, 200.0, 141.4213562373095)]
