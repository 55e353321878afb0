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
from result_files import request_rows, run_rows

pytestmark = pytest.mark.xdist_group("launchers")  # the basic sweep once (one worker)

JOBS = ["-m", "profile=fast", "workload.warmup=1", "workload.iterations=3",
        "model=haiku-4-5,sonnet-4-5"]


def multirun(tmp_path: Path, *launcher: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", "run", *JOBS, *launcher],
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


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sweep on Hydra's basic launcher, run once: the reference for the other launchers."""
    folder = tmp_path_factory.mktemp("basic")
    done = multirun(folder)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def test_multirun_makes_one_run_per_job(basic: Path) -> None:
    runs = run_rows(basic / "results")
    assert sorted(r["sweep_job"] for r in runs) == [0, 1]
    assert {r["model"] for r in request_rows(basic / "results")} == {"haiku-4-5", "sonnet-4-5"}


def assert_same_rows_as_basic(basic: Path, tmp_path: Path, *launcher: str) -> None:
    """The sweep on ``launcher`` makes the basic launcher's jobs and rows (8: two jobs of one
    warm-up and three requests), and reads back as one dataset of two runs."""
    other = tmp_path / "other"
    other.mkdir()
    done = multirun(other, *launcher)
    assert done.returncode == 0, done.stderr[-3000:]
    basic_jobs, basic_rows = jobs_and_rows(basic / "results")
    other_jobs, other_rows = jobs_and_rows(other / "results")
    assert sorted(other_jobs.values()) == sorted(basic_jobs.values()) == [0, 1]
    assert other_rows == basic_rows and len(basic_rows) == 8
    read_back = subprocess.run([sys.executable, "-m", "latlab", "sql",
                                "SELECT count(DISTINCT run_id) AS runs FROM requests",
                                "--format", "csv"], cwd=other, capture_output=True, text=True,
                               timeout=60)
    assert read_back.stdout.split() == ["runs", "2"], read_back.stderr


@pytest.mark.optional
@pytest.mark.skipif(not has_plugin("hydra_plugins.hydra_joblib_launcher"),
                    reason="hydra-joblib-launcher not installed (pip install "
                           "'latlab[launchers]' or hydra-joblib-launcher==1.2.0)")
def test_joblib_multirun_makes_the_same_rows_as_the_basic_launcher(basic: Path,
                                                                   tmp_path: Path) -> None:
    assert_same_rows_as_basic(basic, tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


@pytest.mark.optional
@pytest.mark.slow
@pytest.mark.skipif(not has_plugin("hydra_plugins.hydra_ray_launcher"),
                    reason="hydra-ray-launcher not installed (about 400 MB with ray; "
                           "pip install hydra-ray-launcher==1.2.2)")
def test_ray_multirun_makes_the_same_rows_as_the_basic_launcher(basic: Path,
                                                                tmp_path: Path) -> None:
    """A local Ray cluster started by the launcher (two CPUs, no dashboard)."""
    assert_same_rows_as_basic(basic, tmp_path, "hydra/launcher=ray",
                              "+hydra.launcher.ray.init.num_cpus=2",
                              "+hydra.launcher.ray.init.include_dashboard=false")
