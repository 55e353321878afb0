"""The load engine's workers (runner/engine/workers.py): worker processes keep the global
schedule and measure their own lag."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from result_files import request_rows, the_run, wait_for_request_files

FAST = ["profile=fast", "workload.warmup=1"]


def latlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", "run", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def num(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def test_two_workers_make_exactly_the_planned_rows(tmp_path: Path) -> None:
    done = latlab(*FAST, "workload.iterations=40", "workload.concurrency=4",
                  "workload.workers=2", "++matrix.model=[haiku-4-5,sonnet-4-5]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    keys = [(r["cell"], r["iteration"], r["warmup"]) for r in rows]
    assert len(rows) == 88 and len(set(keys)) == 88  # no loss, no duplicates (4 warm-ups/cell)
    assert {r["worker"] for r in rows} == {0, 1, 2, 3}  # slots 0, 2 in one process; 1, 3
    assert len({f.name.split("-")[2] for f in (tmp_path / "results").glob("requests/*/*")}) == 2
    assert all(num(r["latency_from_scheduled_ms"]) == pytest.approx(
        num(r["send_delay_ms"]) + num(r["total_ms"])) for r in rows)
    run = the_run(tmp_path / "results")
    assert run["workers"] == 2 and run["requests"] == 88 and run["status"] == "finished"
    assert run["loop_lag_p99_ms"] is not None and run["client_cpu_pct"] is not None


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_open_loop_rate_is_kept_across_two_workers(tmp_path: Path) -> None:
    done = latlab(*FAST, "workload.iterations=120", "workload.rate=100", "workload.workers=2",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = sorted(request_rows(tmp_path / "results"), key=lambda r: num(r["scheduled_ms"]))
    assert len(rows) == 121 and {r["worker"] for r in rows} == {0, 1}
    assert [r["worker"] for r in rows[:6]] == [0, 1, 0, 1, 0, 1]  # request i -> worker i mod 2
    dues = [num(r["scheduled_ms"]) for r in rows]
    sent = sorted(d + num(r["send_delay_ms"]) for d, r in zip(dues, rows, strict=True))
    assert (len(dues) - 1) / (dues[-1] - dues[0]) * 1000 == pytest.approx(100, rel=0.01)
    assert (len(sent) - 1) / (sent[-1] - sent[0]) * 1000 == pytest.approx(100, rel=0.05)
    gaps = sorted(b - a for a, b in zip(sent, sent[1:], strict=False))
    assert gaps[len(gaps) // 2] == pytest.approx(10.0, abs=1.0)  # interleaved, not in bursts


def test_an_overloaded_client_is_flagged_and_warned_about(tmp_path: Path) -> None:
    done = latlab(*FAST, "workload.iterations=20", "workload.concurrency=4",
                  "workload.max_client_lag_ms=0.001", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert len(warning) == 1 and "timings may be inflated by up to" in warning[0]
    assert "cause: " in warning[0] and "Advice: " in warning[0]  # which: tests/test_selfcheck.py
    rows = request_rows(tmp_path / "results")
    assert sum(bool(r["client_late"]) for r in rows) > len(rows) // 2
    assert the_run(tmp_path / "results")["workers"] == 1


@pytest.mark.timing  # no client lag beyond the limit: run alone (conftest.py)
def test_a_normal_run_is_not_flagged(tmp_path: Path) -> None:
    done = latlab(*FAST, "workload.iterations=20", "workload.workers=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr


def test_ctrl_c_with_workers_flushes_and_resumes(tmp_path: Path) -> None:
    args = [*FAST, "workload.iterations=400", "workload.concurrency=16", "workload.workers=2",
            "profile.models.default.ttft_ms.median=100"]
    proc = subprocess.Popen([sys.executable, "-m", "latlab", "run", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_request_files(tmp_path / "results", timeout_s=30)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    rows = request_rows(tmp_path / "results")
    assert 0 < len(rows) < 416 and the_run(tmp_path / "results")["requests"] == len(rows)
    run_id = stderr.split("resume=")[1].split()[0]
    done = latlab(*args, f"resume={run_id}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    keys = {(r["cell"], r["iteration"], r["warmup"]) for r in request_rows(tmp_path / "results")}
    assert len(keys) == len(request_rows(tmp_path / "results")) == 416  # 16 warm-ups
