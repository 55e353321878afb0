"""Capacity search (workload.search, experiment=capacity_search): bisection on the open-loop
rate finds the knee the emulator's capacity implies; every step is a normal run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from result_files import run_rows

from latlab.analysis.capacity import StepCounts, wilson_interval
from latlab.runner.app.search import SearchSpec, verdict
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.paths import conf_file

SLO = {"thresholds": {"A": {"ttft_p99_ms": 1500}}}
SLOTS = 2


def latlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", "run", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=240)


def test_wilson_interval_decides_only_with_enough_requests() -> None:
    spec = SearchSpec.parse({"low": 1, "high": 2}, SLO)
    assert spec.ttft_ms == 1500  # the SLO's grade-A TTFT P99 by default
    assert wilson_interval(60, 60)[0] < 0.95 < wilson_interval(80, 80)[0]
    assert verdict(StepCounts(60, 60, 0, 1.0), spec) == "undecided"  # too few to tell
    assert verdict(StepCounts(100, 100, 0, 1.0), spec) == "pass"
    assert verdict(StepCounts(100, 70, 0, 1.0), spec) == "fail"
    assert verdict(StepCounts(100, 90, 10, 1.0), spec) == "saturated"  # errors: stop at once
    assert verdict(StepCounts(100, 100, 0, 3.0), spec) == "saturated"  # TTFT keeps rising


@pytest.mark.parametrize(("block", "named"), [
    ({"low": 1, "high": 2, "stride": 3}, "workload.search.stride"),
    ({"low": 5, "high": 2}, "workload.search.low/high"),
    ({"low": 1, "high": 2, "param": "tokens"}, "workload.search.param"),
])
def test_bad_search_blocks_name_the_key(block: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        SearchSpec.parse(block, SLO)


def implied_capacity_rps(max_tokens: int) -> float:
    """slots / service time: a request holds its slot from admission to its last token."""
    model = yaml.safe_load(conf_file("profile", "fast.yaml").read_text())["models"]["default"]
    tokens = min(max_tokens, int(model["output_tokens"]))
    service_ms = model["ttft_ms"]["median"] + (tokens - 1) * model["itl_ms"]["median"]
    return SLOTS / (service_ms / 1000)


@pytest.mark.timing
def test_capacity_search_finds_the_emulators_knee(tmp_path: Path) -> None:
    """Quick mode of experiments/capacity_search.yaml on the fast profile with 2 slots."""
    done = latlab("experiment=capacity_search", "profile=fast",
                  f"profile.capacity.slots={SLOTS}", "profile.capacity.max_queue=2",
                  "workload.search.low=16", "workload.search.high=64",
                  "workload.search.ttft_ms=80", "workload.search.requests=80", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    knee = re.search(r"knee: ([0-9.]+) req/s, in \[[0-9.]+, ([0-9.]+)\)", done.stdout)
    assert knee, done.stdout
    capacity = implied_capacity_rps(max_tokens=32)  # 2 / 58 ms ≈ 34.5 req/s
    assert float(knee[1]) == pytest.approx(capacity, rel=0.10), done.stdout
    steps = [line for line in done.stdout.splitlines() if re.match(r"\s+\d+\s+[0-9.]+\s+\d+", line)]
    runs = run_rows(tmp_path / "results")
    assert len(runs) >= len(steps) >= 4  # every step (and extension) is a normal run
    assert all(str(r["run_name"]).startswith("capacity_search-search-rate=") for r in runs)


@pytest.mark.timing
def test_concurrency_search_finds_the_slot_count(tmp_path: Path) -> None:
    """Closed loop, no queue: a third request in flight is turned away (529), so the knee is
    the emulator's 2 slots."""
    done = latlab("experiment=capacity_search", "profile=fast", "profile.capacity.slots=2",
                  "profile.capacity.max_queue=0", "workload.search.param=concurrency",
                  "workload.search.low=1", "workload.search.high=8",
                  "workload.search.requests=80", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "knee: 2 in flight, in [2, 3)" in done.stdout, done.stdout
