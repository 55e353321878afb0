"""bench/fidelity_run.py's figures and its peers: the one scoring code (bench/fidelity_figures.py)
on hand-made requests, each peer's per-request export read back (records in the shape of
GuideLLM 0.8.1, inference-perf 0.7.0 and AIPerf 0.13.0), the process-tree CPU, the emulator's
accept log over real connections; and, when the peers are installed (``LATLAB_PEERS`` = the
folder of ``bench/install_peers.sh``), one short real run of each against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

# appended, not prepended: bench/analysis.py must not shadow the analysis package
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))

import peer_aiperf  # noqa: E402
import peer_guidellm  # noqa: E402
import peer_inference_perf  # noqa: E402
from emulator_process import emulator_process  # noqa: E402
from fidelity_figures import (  # noqa: E402
    Context,
    CpuTrace,
    Req,
    goal,
    mark_new_connections,
    read_accepts,
    score,
    table,
    tree_cpu_seconds,
)

T0 = 1796170030.0
SERVER = {"lag_ms_by_event": {"chunk": {"p50": 0.5, "p99": 2.0}}}


def req(start: float, ttft: float | None = 151.5, gaps: tuple[float, ...] | None = (10.0,) * 4,
        warmup: bool = False, new: bool = False, mean: float | None = None) -> Req:
    return Req(start_s=T0 + start, end_s=T0 + start + 0.2, ttft_ms=ttft, gaps_ms=gaps,
               mean_gap_ms=mean, tokens=0 if ttft is None else 5, ok=ttft is not None,
               warmup=warmup, new_connection=new)


def flat_trace(cpu_per_s: float) -> CpuTrace:
    return CpuTrace(pid=0, walls=[T0 - 1, T0 + 10], cpus=[0.0, 11 * cpu_per_s])


def test_score_measures_against_the_schedule_less_the_servers_lag() -> None:
    reqs = [req(0.0, 400.0, warmup=True, new=True),  # warm-up: not measured, but in the span
            req(0.1, 170.5, new=True), req(0.2, 151.5, gaps=(10.0, 13.0, 9.0)),
            req(0.3, 150.5), req(0.4, None)]
    r = score(reqs, flat_trace(0.001), Context("x", 2, "per gap", SERVER))
    assert (r.requests, r.errors, r.new_connections) == (4, 1, 1)
    assert (r.ttft_err_p50, r.ttft_err_max) == (1.0, 20.0)  # 151.5 − 150 − 0.5
    assert (r.steady_n, r.steady_err_max) == (2, 1.0)  # the request that connected is out
    assert r.gap_err_p99 == 3.0
    assert r.cpu_us_per_token == pytest.approx(0.001 * 0.6 * 1e6 / 20)  # 0.6 s span, 4×5 tokens
    assert r.streams_held == pytest.approx(0.6 / 0.3)  # in flight over 0.1 … 0.4 s
    assert "| n/a | n/a |" in table([r])  # no loop lag: not latlab


def test_tools_without_per_gap_times_are_scored_on_their_mean_gap() -> None:
    reqs = [req(0.0, gaps=None, mean=10.5), req(0.1, gaps=None, mean=12.0)]
    r = score(reqs, flat_trace(0.0), Context("g", 1, "per-request mean", SERVER))
    assert r.gap_err_p99 == 2.0 and r.gaps == "per-request mean"


def test_goal_compares_with_the_best_peer_at_each_level() -> None:
    def run(tool: str, level: int, p99: float, cpu: float) -> Any:
        r = score([req(0.0)], flat_trace(0.0), Context(tool, level, "per gap", SERVER))
        return replace(r, ttft_err_p99=p99, cpu_us_per_token=cpu)

    lines = goal([run("latlab", 1, 5.0, 100.0), run("a", 1, 6.0, 900.0), run("b", 1, 9.0, 300.0),
                  run("latlab", 16, 5.0, 100.0), run("a", 16, 4.0, 390.0)])
    assert lines[0].startswith("1 streams:") and "best peer a +6.00 (met)" in lines[0]
    assert "best peer b 300.0 µs/token = 0.33x (NOT met" in lines[0]
    assert "best peer a +4.00 (NOT met)" in lines[1] and "0.26x (NOT met" in lines[1]
    assert goal([run("latlab", 1, 5.0, 100.0)]) == []  # no peer, no verdict


def test_each_accepted_connection_marks_the_latest_request_started_before_it() -> None:
    reqs = [req(0.0), req(0.01), req(0.02), req(1.0)]
    marked = mark_new_connections(reqs, [T0 + 0.015, T0 + 0.016, T0 + 0.5])
    assert [r.new_connection for r in marked] == [True, True, True, False]


def test_tree_cpu_counts_the_children() -> None:
    burn = ("import subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', "
            "'import time\\nwhile time.process_time() < 0.3: pass\\ntime.sleep(30)']); "
            "time.sleep(30)")
    parent = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 20
        while tree_cpu_seconds(parent.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        own = Path(f"/proc/{parent.pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert tree_cpu_seconds(parent.pid) >= 0.3
        assert (int(own[11]) + int(own[12])) / os.sysconf("SC_CLK_TCK") < 0.25
    finally:
        parent.kill()
        parent.wait()


def test_the_emulator_logs_each_connection_it_accepts(tmp_path: Path) -> None:
    log = tmp_path / "accepts.log"
    entry = (str(Path(__file__).resolve().parents[1] / "bench" / "emulator_accepts.py"), str(log))
    with emulator_process(["--ttft-ms", "1"], entry=entry) as base:
        before = time.time()
        for _ in range(3):  # urllib opens a connection per request
            with urllib.request.urlopen(base + "/_latlab/stats", timeout=10) as resp:
                resp.read()
        accepts = read_accepts(log)
    assert len(accepts) == 3 and all(before <= a <= time.time() for a in accepts)


# ------------------------------------------------------------------------ peers' exports


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def aiperf_record(phase: str, reused: int, error: Any = None) -> dict[str, Any]:
    ns = int(T0 * 1e9)
    return {"metadata": {"benchmark_phase": phase, "request_start_ns": ns,
                         "request_end_ns": ns + 650_000_000},
            "metrics": {"time_to_first_token": {"value": 152.5, "unit": "ms"},
                        "inter_chunk_latency": {"value": [9.5, 10.0, 11.0], "unit": "ms"},
                        "http_req_connection_reused": {"value": reused, "unit": "ratio"}},
            "error": error}


def test_aiperf_records(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    lines = [aiperf_record("warmup", 0), aiperf_record("profiling", 1),
             aiperf_record("profiling", 0, {"code": 500})]
    (tmp_path / peer_aiperf.EXPORT).write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    warm, steady, failed = peer_aiperf.read(tmp_path)
    assert warm.warmup and warm.new_connection and not steady.warmup
    assert not steady.new_connection and steady.ok and not failed.ok
    assert steady.ttft_ms == 152.5 and steady.gaps_ms == (9.5, 10.0, 11.0)
    assert steady.tokens == 4 and steady.end_s - steady.start_s == pytest.approx(0.65)
    argv, _ = peer_aiperf.command("aiperf", "http://h", 16, 20, tmp_path, tmp_path / "tok")
    assert option(argv, "--concurrency") == "16" and option(argv, "--request-count") == "320"
    assert option(argv, "--warmup-request-count") == "16" and "--streaming" in argv


def guidellm_request(start: float, ttft: float | None) -> dict[str, Any]:
    return {"request_start_time": T0 + start, "request_end_time": T0 + start + 0.65,
            "time_to_first_token_ms": ttft, "inter_token_latency_ms": 10.2,
            "info": {"timings": {"token_iterations": 50}}}


def test_guidellm_report(tmp_path: Path) -> None:
    bench = {"scheduler_metrics": {"measure_start_time": T0 + 0.5},
             "requests": {"successful": [guidellm_request(0.0, 160.0),
                                         guidellm_request(0.7, 151.0)],
                          "errored": [guidellm_request(0.8, None)], "incomplete": []}}
    (tmp_path / peer_guidellm.REPORT).write_text(json.dumps({"benchmarks": [bench]}))
    warm, ok, failed = peer_guidellm.read(tmp_path)
    assert warm.warmup and not ok.warmup and ok.ok and not failed.ok
    assert ok.gaps_ms is None and ok.mean_gap_ms == 10.2 and ok.tokens == 50
    argv, env = peer_guidellm.command("g", "http://h", 4, 20, tmp_path, tmp_path / "tok")
    assert json.loads(option(argv, "--profile"))["warmup"] == {"mode": "requests", "value": 4}
    assert json.loads(option(argv, "--constraint"))["count"] >= 21 * 4
    assert env["HF_HUB_OFFLINE"] == "1"


def test_inference_perf_report(tmp_path: Path) -> None:
    peer_inference_perf.command("ip", "http://h", 2, 2, tmp_path, tmp_path / "tok")
    entries = [{"start_time": 100.0 + i, "end_time": 100.5 + i, "error": None,
                "info": {"response_metrics": {"chunk_times": [100.15 + i, 100.16 + i,
                                                              100.172 + i]}}}
               for i in (3, 0, 1, 2, 4, 5)]
    entries.append({"start_time": 106.0, "end_time": 106.1, "info": {"response_metrics": None},
                    "error": {"error_type": "HTTP Error 500", "error_msg": "x"}})
    (tmp_path / "out" / "run").mkdir(parents=True)
    (tmp_path / "out" / "run" / peer_inference_perf.REPORT).write_text(json.dumps(entries))
    reqs = peer_inference_perf.read(tmp_path)
    assert [r.warmup for r in reqs] == [True, True, False, False, False, False, False]
    assert reqs[0].ttft_ms == pytest.approx(150.0) and reqs[0].tokens == 3
    assert reqs[0].gaps_ms == pytest.approx((10.0, 12.0)) and not reqs[-1].ok
    assert abs(reqs[0].start_s - (time.time() - time.perf_counter() + 100.0)) < 0.01
    stages = peer_inference_perf.config("http://h", 2, 2, tmp_path, tmp_path)["load"]["stages"]
    assert stages == [{"num_requests": 2, "concurrency_level": 2},
                      {"num_requests": 4, "concurrency_level": 2}]


# --------------------------------------------------------------------- real peers, optional

PEERS_DIR = os.environ.get("LATLAB_PEERS", "")
EXECUTABLES = {"guidellm": "guidellm", "inference-perf": "inference-perf", "aiperf": "aiperf"}


@pytest.mark.slow
@pytest.mark.optional
@pytest.mark.parametrize("name", sorted(EXECUTABLES))
def test_peer_measures_the_emulator(name: str) -> None:
    exe = Path(PEERS_DIR) / name / "bin" / EXECUTABLES[name]
    if not os.access(exe, os.X_OK):
        pytest.skip(f"{name} not installed: LATLAB_PEERS={PEERS_DIR!r} (bench/install_peers.sh)")
    out = subprocess.run([sys.executable, "bench/fidelity_run.py", "--levels", "2", "--waves",
                          "3", "--peer", f"{name}={exe}"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=900, check=True)
    rows = [line for line in out.stdout.splitlines() if line.startswith(f"| {name} | 2 |")]
    assert rows, out.stderr[-2000:]
    cells = [c.strip() for c in rows[-1].strip("|").split("|")]
    assert int(cells[2]) >= 6 and cells[3] == "0"  # ≥ waves × streams measured, no errors
    assert -5 < float(cells[5]) < 1000  # TTFT error p50: near the schedule, never far below
