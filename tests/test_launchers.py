"""Multirun on other Hydra launchers: the same jobs, the same rows, one run per job.

joblib and Ray run jobs in reused worker processes: every loop-bound object (HTTP
clients, the emulator's loop) must be created inside the job, never at import time.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

JOBS = ["-m", "profile=fast", "workload.warmup=1", "workload.iterations=3",
        "model=haiku-4-5,sonnet-4-5"]


def multirun(tmp_path: Path, *launcher: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runner.cli", "run", *JOBS, *launcher],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def jobs_and_rows(results: Path) -> tuple[dict[str, int], set[tuple[int, str, int, bool]]]:
    """run id -> sweep job, and every (job, cell, iteration, warmup) row."""
    runs = [r for f in (results / "runs").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    job_of = {str(r["run_id"]): int(r["sweep_job"]) for r in runs}
    rows = [r for f in (results / "requests").glob("*/*.parquet")
            for r in pq.read_table(f).to_pylist()]
    keys = {(job_of[str(r["run_id"])], str(r["cell"]), int(r["iteration"]), bool(r["warmup"]))
            for r in rows}
    assert len(keys) == len(rows)  # no duplicates
    return job_of, keys


def has_plugin(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.optional
@pytest.mark.skipif(not has_plugin("hydra_plugins.hydra_joblib_launcher"),
                    reason="hydra-joblib-launcher not installed (pip install "
                           "'latlab[launchers]' or hydra-joblib-launcher==1.2.0)")
def test_joblib_multirun_makes_the_same_rows_as_the_basic_launcher(tmp_path: Path) -> None:
    basic, joblib = tmp_path / "basic", tmp_path / "joblib"
    basic.mkdir()
    joblib.mkdir()
    done = multirun(basic)
    assert done.returncode == 0, done.stderr[-3000:]
    done = multirun(joblib, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    basic_jobs, basic_rows = jobs_and_rows(basic / "results")
    joblib_jobs, joblib_rows = jobs_and_rows(joblib / "results")
    assert sorted(joblib_jobs.values()) == sorted(basic_jobs.values()) == [0, 1]
    assert joblib_rows == basic_rows and len(basic_rows) == 8
    read_back = subprocess.run([sys.executable, "-m", "runner.cli", "sql",
                                "SELECT count(DISTINCT run_id) AS runs FROM requests",
                                "--format", "csv"], cwd=joblib, capture_output=True, text=True,
                               timeout=60)
    assert read_back.stdout.split() == ["runs", "2"], read_back.stderr


@pytest.mark.optional
@pytest.mark.slow
@pytest.mark.skipif(not has_plugin("hydra_plugins.hydra_ray_launcher"),
                    reason="hydra-ray-launcher not installed (about 400 MB with ray; "
                           "pip install hydra-ray-launcher==1.2.2)")
def test_ray_multirun_makes_one_run_per_job(tmp_path: Path) -> None:
    done = multirun(tmp_path, "hydra/launcher=ray", "hydra.launcher.ray.init.num_cpus=2")
    assert done.returncode == 0, done.stderr[-3000:]
    jobs, rows = jobs_and_rows(tmp_path / "results")
    assert sorted(jobs.values()) == [0, 1] and len(rows) == 8
