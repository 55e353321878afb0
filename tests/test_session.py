"""Agent sessions with the built-in loop, end to end: ``latlab run workload=session`` against
the emulator's scripted turns; spans, tool timings and the requests they link to."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from in_process import latlab_here
from result_files import request_rows, the_run

from latlab.runner.core.tasks import load_task

FAST = ["workload=session", "profile=fast"]


def latlab(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def the_runs(results: Path) -> list[str]:
    return sorted(p.name for p in (results / "requests").iterdir())


def span_rows(results: Path) -> list[dict[str, Any]]:
    return [r for f in sorted((results / "spans").glob("*/*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def test_simple_session_yields_the_expected_spans_and_linked_rows(tmp_path: Path) -> None:
    done = latlab("run", *FAST, "workload.iterations=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # sessions and their model calls, as the grade table below counts them (n = 6)
    assert ": 2 sessions (0 failed), 6 measured model calls (0 errors) -> " in done.stdout
    assert "grades per model call (n = model calls)" in done.stdout
    assert done.stdout.splitlines()[-1].rstrip().endswith(" 6")
    spans = span_rows(tmp_path / "results")
    kinds = Counter(s["kind"] for s in spans)
    # simple: 2 scripted turns with one tool each, then the closing turn: 3 model calls
    assert kinds == {"session": 2, "turn": 6, "model_call": 6, "http_call": 6, "tool_call": 4}
    assert all(s["status"] == "ok" for s in spans)
    tools = sorted((s["name"], s["category"], s["exit_code"]) for s in spans
                   if s["kind"] == "tool_call")
    assert tools == [("Bash", "bash", 0)] * 2 + [("Write", "file", None)] * 2
    by_id = {s["span_id"]: s for s in spans}
    for span in spans:  # every span but the roots hangs under a span of its own session
        if span["kind"] != "session":
            assert by_id[span["parent_id"]]["session_id"] == span["session_id"]
    rows = request_rows(tmp_path / "results")
    model_calls = {s["span_id"]: s for s in spans if s["kind"] == "model_call"}
    assert len(rows) == 6 and {r["span_id"] for r in rows} == set(model_calls)
    for row in rows:
        call = model_calls[str(row["span_id"])]
        assert row["session_id"] == call["session_id"] and row["ttft_ms"] == call["ttft_ms"]
        assert row["request_id"] == call["request_id"] and row["request_id"]
    assert the_run(tmp_path / "results")["status"] == "finished"


def test_medium_session_runs_tools_for_real_including_mcp(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", *FAST, "workload.task=medium", "workload.iterations=1"], capsys,
                       tmp_path)
    assert done.returncode == 0, done.stderr
    spans = span_rows(tmp_path / "results")
    calls = [s for s in spans if s["kind"] == "tool_call"]
    assert len(calls) == load_task("medium").tool_calls == 7
    assert Counter(s["category"] for s in calls) == {"file": 4, "bash": 2, "mcp": 1}
    assert all(s["status"] == "ok" for s in calls), [s["error_message"] for s in calls]
    (mcp,) = [s for s in calls if s["category"] == "mcp"]
    assert mcp["name"] == "mcp__latlab__file_stats" and mcp["tool_output_bytes"] > 0
    (session,) = [s for s in spans if s["kind"] == "session"]
    assert json.loads(session["attributes"])["stop_reason"] == "end_turn"
    assert session["turn"] == 6  # five scripted turns and the closing one


@pytest.mark.xdist_group("session_run")  # one_session_run once (conftest.py)
def test_tool_timings_add_up(one_session_run: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    # the run: `latlab run workload=session profile=fast workload.iterations=1` (conftest.py);
    # the analysis commands in this process (tests/in_process.py), on its results
    shutil.copytree(one_session_run / "results", tmp_path / "results")
    results = ["--results", str(tmp_path / "results")]
    out = latlab_here(["tool-timings", "--by", "session", "--format", "json", *results], capsys)
    (session_run,) = the_runs(tmp_path / "results")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["tool_calls"] == 2 and row["model_calls"] == 3 and row["turns"] == 3
    parts = row["bash_ms"] + row["cli_ms"] + row["mcp_ms"] + row["file_ms"]
    assert parts + row["other_tool_ms"] == pytest.approx(row["tool_ms"], abs=0.01)
    assert row["model_ms"] + row["tool_ms"] < row["total_ms"]
    assert 0 < row["model_share"] < 1 and 0 < row["tool_share"] < 1
    by_provider = latlab_here(["tool-timings", "--format", "csv", *results], capsys)
    assert by_provider.stdout.splitlines()[0].startswith("run_id,provider,driver,task")
    endpoints = json.loads(latlab_here(["tool-timings", "--by", "endpoints", "--format", "json",
                                        *results], capsys).stdout)
    assert [(e["method"], e["endpoint"], e["calls"]) for e in endpoints] == [
        ("POST", "/v1/messages", 3)]
    # every HTTP call, sessions' spans and plain request rows alike, in one view
    plain = latlab_here(["run", "profile=fast", "workload.iterations=2", "workload.warmup=0",
                         "provider=bedrock", "emulate=true"], capsys, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert ": 2 requests, 0 errors -> " in plain.stdout  # no sessions: requests
    (plain_run,) = set(the_runs(tmp_path / "results")) - {session_run}
    none = latlab_here(["tool-timings", plain_run, *results], capsys)  # no sessions: one line
    assert none.returncode == 0 and none.stdout == (
        f"no agent sessions in run {plain_run}: tool-timings reads the sessions of `latlab "
        "run workload=session` (or workload=claude_code, latlab proxy)\n")
    delta = latlab_here(["tool-timings", session_run, "--by", "delta", *results], capsys)
    assert delta.stdout == f"no rows for --by delta in run {session_run} (sessions: 1; see " \
        "--by session)\n"
    calls = latlab_here(["sql", "SELECT source, endpoint, count(*) AS n FROM http_calls "
                         "GROUP BY ALL ORDER BY source", "--format", "json", *results], capsys)
    assert json.loads(calls.stdout) == [
        {"source": "requests", "endpoint": "/model/{modelId}/invoke-with-response-stream",
         "n": 2},
        {"source": "span", "endpoint": "/v1/messages", "n": 3}]


def test_failing_upstream_gives_error_spans_not_a_crash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", *FAST, "workload.iterations=2", "profile.faults.error_rate=1.0"],
                       capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    spans = span_rows(tmp_path / "results")
    assert Counter(s["kind"] for s in spans) == {"session": 2, "turn": 2, "model_call": 2,
                                                 "http_call": 2}
    assert all(s["status"] == "error" for s in spans)
    assert {s["error_type"] for s in spans} == {"overloaded"}
    assert {s["http_status"] for s in spans if s["kind"] == "model_call"} == {529}
    assert the_run(tmp_path / "results")["status"] == "finished"


def test_unreachable_upstream_is_an_error_session(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", "workload=session", "workload.iterations=1", "emulate=false",
                        "provider.base_url=http://127.0.0.1:9"], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    (session,) = [s for s in span_rows(tmp_path / "results") if s["kind"] == "session"]
    assert session["status"] == "error" and session["error_type"] == "connect_error"


def test_turn_limit_ends_the_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", *FAST, "workload.iterations=1", "workload.max_turns=1"], capsys,
                       tmp_path)
    assert done.returncode == 0, done.stderr
    (session,) = [s for s in span_rows(tmp_path / "results") if s["kind"] == "session"]
    assert json.loads(session["attributes"])["stop_reason"] == "max_turns"


def test_unknown_task_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", *FAST, "workload.task=nope"], capsys, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("latlab: error: workload.task:")
    assert not (tmp_path / "results" / "spans").exists()


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_cross_provider_delta_shows_bedrocks_layer_in_model_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Default profile: Bedrock adds ≈ 700 ms (575–850 ms p10–p90) to each Haiku call; the
    simple task makes 3 model calls, so model time grows by ≈ 2.1 s and tool time does not."""
    done = latlab("run", "workload=session", "++matrix.provider=[anthropic,bedrock]",
                  "emulate=true", "workload.iterations=1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = latlab_here(["tool-timings", "--by", "delta", "--format", "json",
                       "--results", str(tmp_path / "results")], capsys)
    (delta,) = json.loads(out.stdout)
    assert (delta["provider_a"], delta["provider_b"], delta["task"]) == (
        "anthropic", "bedrock", "simple")
    assert 3 * 450 < delta["model_delta_ms"] < 3 * 1100
    assert abs(delta["tool_delta_ms"]) < delta["model_delta_ms"] / 2
