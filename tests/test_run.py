"""``latlab run`` end to end as a user runs it: a subprocess, the emulator, Parquet on disk.

Where the process adds nothing to what is asserted (rows, exit code 2 and its one line), the
same command runs in this process (tests/in_process.py); the first test, the environment,
secrets and signals use the real ``python -m latlab``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from in_process import latlab_here
from result_files import request_rows, run_rows, wait_for_request_files

FAST = ["profile=fast", "workload.warmup=1", "workload.iterations=3"]


def latlab(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_run_writes_rows_and_prints_grades(tmp_path: Path) -> None:
    done = latlab("run", *FAST, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    assert len(rows) == 4 and sum(bool(r["warmup"]) for r in rows) == 1
    assert all(r["error_type"] is None and r["emulated"] for r in rows)
    assert {r["cell"] for r in rows} == {"emulator/haiku-4-5/count20/none/stream"}
    (run,) = run_rows(tmp_path / "results")
    assert run["status"] == "finished" and run["requests"] == 4
    assert "grade" in done.stdout and " A " in done.stdout


def test_a_closed_loop_opens_its_connections_in_warm_up(tmp_path: Path) -> None:
    """C streams: C warm-up rows each open a connection (and carry its connect time); no
    measured row opens one, so measured TTFT holds no connection setup."""
    done = latlab("run", *FAST, "workload.concurrency=4", "workload.iterations=12", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    warm = [r for r in rows if r["warmup"]]
    assert len(rows) == 16 and len(warm) == 4
    assert all(r["new_connection"] and num(r["connect_ms"]) > 0 for r in warm)
    assert not any(r["new_connection"] or r["connect_ms"] for r in rows if not r["warmup"])


def test_reuse_off_opens_a_connection_for_every_measured_request(tmp_path: Path) -> None:
    done = latlab("run", *FAST, "workload.concurrency=2", "provider.reuse_connections=false",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [r for r in request_rows(tmp_path / "results") if not r["warmup"]]
    assert len(rows) == 3 and all(r["new_connection"] and num(r["connect_ms"]) > 0 for r in rows)


def num(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def test_matrix_cells_are_interleaved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", *FAST, "++matrix.model=[haiku-4-5,sonnet-4-5]"], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = sorted(request_rows(tmp_path / "results"), key=lambda r: str(r["started_at"]))
    models = [r["model"] for r in rows]
    assert models == ["haiku-4-5", "sonnet-4-5"] * 4


# a multirun makes one run per job: tests/test_launchers.py, on the basic launcher's sweep it
# compares the other launchers with


def test_failed_requests_are_rows_and_the_run_completes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", *FAST, "workload.iterations=12", "profile.faults.error_rate=0.5"],
                       capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    errors = [r for r in rows if r["error_type"] is not None]
    assert len(rows) == 13 and 0 < len(errors) < 13
    assert {r["error_type"] for r in errors} == {"overloaded"}


@pytest.mark.parametrize(("override", "named"), [
    ("workload.iterations=0", "workload.iterations"),
    ("+workload.iteratons=3", "workload.iteratons"),
    ("model=gpt-9", "model=gpt-9"),
    ("workload.schedule=random", "workload.schedule"),
    ("slo.thresholds.B.ttft_p99_ms=10", "slo.thresholds.B.ttft_p99_ms"),
])
def test_bad_spec_exits_2_with_one_line_and_writes_nothing(
        tmp_path: Path, override: str, named: str, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", override], capsys, tmp_path)
    assert done.returncode == 2
    assert named in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "results" / "requests").exists()


def test_real_provider_without_key_fails_preflight(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    done = latlab("run", "provider=anthropic", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "ANTHROPIC_API_KEY" in done.stderr
    assert not list((tmp_path / "results").glob("requests/*/*.parquet"))


def test_secret_override_is_refused_and_never_written(tmp_path: Path) -> None:
    secret = "sk-ant-api03-LATLABFAKESECRET0123456789"
    done = latlab("run", f"run_name={secret}", cwd=tmp_path)
    assert done.returncode == 2 and "credential" in done.stderr
    assert secret not in done.stderr
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes()


def test_own_experiments_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "my-exps"
    mine.mkdir()
    (mine / "mine.yaml").write_text("# @package _global_\nrun_name: mine\n"
                                    "workload: {iterations: 2, warmup: 0}\n")
    done = latlab_here(["run", "--experiments-dir", str(mine), "experiment=mine", "profile=fast"],
                       capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = run_rows(tmp_path / "results")
    assert run["run_name"] == "mine" and run["requests"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_leaves_readable_parquet(tmp_path: Path, sig: signal.Signals) -> None:
    args = ["run", "workload.iterations=400", "workload.warmup=0", "workload.concurrency=8",
            "profile.models.opus.ttft_ms.median=50", "model=opus-4-6"]
    proc = subprocess.Popen([sys.executable, "-m", "latlab", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_request_files(tmp_path / "results", timeout_s=30)  # the flush timer wrote rows
    time.sleep(1)  # and more are in flight or buffered
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    rows = request_rows(tmp_path / "results")  # every file present must read
    assert 0 < len(rows) < 400
    assert all(r["error_type"] is None for r in rows)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in stderr
        (run,) = run_rows(tmp_path / "results")
        assert run["status"] == "interrupted" and run["requests"] == len(rows)


@pytest.mark.slow
def test_interrupted_run_resumes_without_duplicates(tmp_path: Path) -> None:
    args = ["run", "workload.iterations=60", "workload.warmup=1", "workload.concurrency=4",
            "profile=fast", "profile.models.default.ttft_ms.median=200"]
    proc = subprocess.Popen([sys.executable, "-m", "latlab", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_request_files(tmp_path / "results", timeout_s=30)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    run_id = stderr.split("resume=")[1].split()[0]
    before = len(request_rows(tmp_path / "results"))
    assert 0 < before < 64
    changed = latlab(*args, "workload.max_tokens=5", f"resume={run_id}", cwd=tmp_path)
    assert changed.returncode == 2 and "workload.max_tokens" in changed.stderr
    done = latlab(*args, f"resume={run_id}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    keys = [(r["cell"], r["iteration"], r["warmup"]) for r in rows]
    assert len(rows) == 64 and len(set(keys)) == 64  # 4 streams: 4 warm-ups
    (run,) = run_rows(tmp_path / "results")
    assert run["status"] == "finished" and run["resumes"] == 1 and run["requests"] == 64


def test_resume_of_unknown_run_is_a_config_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", "resume=20990101T000000Z-abcdef"], capsys, tmp_path)
    assert done.returncode == 2 and "resume" in done.stderr


FAULT_TYPES = {"rate_limited": "rate_limited", "overloaded": "overloaded",
               "server_error": "server_error", "stream_error": "stream_error",
               "disconnect": "connection_reset", "truncate": "truncated", "stall": "timeout"}


def test_fault_matrix_every_fault_is_a_typed_row_and_no_row_is_lost(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kinds = [f"++profile.faults.kinds.{kind}=1" for kind in FAULT_TYPES]
    done = latlab_here(["run", "profile=fast", "workload.warmup=0", "workload.iterations=42",
                        "workload.concurrency=7", "workload.timeout_s=0.5",
                        "profile.faults.error_rate=1.0", *kinds], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    assert len(rows) == 42
    assert {r["error_type"] for r in rows} == set(FAULT_TYPES.values())
    assert all(r["error_message"] for r in rows)
