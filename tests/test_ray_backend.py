"""workload.backend=ray: the worker loop in Ray actors on a local Ray cluster (loopback), driven by
`latlab run` subprocesses that join it by address; and the one-line errors for bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from result_files import request_rows, the_run
from test_storage import s3_env  # noqa: F401 - a fixture: a local S3 server (moto)

# one Ray cluster (the module fixture) for the module: its tests on one worker, the one of the
# timing group, which two of them are in (conftest.py); elsewhere they would each start one
pytestmark = pytest.mark.xdist_group("timing")

FAST = ["profile=fast", "workload.warmup=1"]
NO_RAY = "needs the ray extra: pip install 'latlab[ray]'"
has_ray = importlib.util.find_spec("ray") is not None
has_moto = importlib.util.find_spec("moto") is not None


def latlab(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", "run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def num(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def keys(results: Path) -> list[tuple[object, object, object]]:
    return [(r["cell"], r["iteration"], r["warmup"]) for r in request_rows(results)]


def nothing_written(results: Path) -> bool:
    return not (results / "runs").exists() and not (results / "requests").exists()


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray cluster of 2 CPUs owned by this test process; its GCS address."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                       object_store_memory=128 * 2**20, logging_level="WARNING")
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


# ---------------------------------------------------------------- bad input: one line, exit 2


def test_an_unknown_backend_names_the_key(tmp_path: Path) -> None:
    done = latlab(*FAST, "workload.backend=nosuch", cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "workload.backend" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and nothing_written(tmp_path / "results")


def test_backend_ray_without_ray_says_how_to_install_it(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    done = latlab(*FAST, "workload.backend=ray", "workload.workers=2", cwd=tmp_path, env=env,
                  timeout=60)
    assert done.returncode == 2, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("latlab: error:")]
    assert "workload.backend" in line and "pip install 'latlab[ray]'" in line
    assert nothing_written(tmp_path / "results")


@pytest.mark.skipif(not has_ray, reason=NO_RAY)
def test_a_bad_ray_address_names_the_key(tmp_path: Path) -> None:
    done = latlab(*FAST, "workload.backend=ray", "workload.ray.address=127.0.0.1:1",
                  cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "workload.ray.address: nothing answers at 127.0.0.1:1" in done.stderr
    assert nothing_written(tmp_path / "results")


# ---------------------------------------------------------------- on a local Ray cluster


@pytest.mark.optional
@pytest.mark.slow
@pytest.mark.timing  # the open-loop rate is a wall-clock figure: run alone (conftest.py)
def test_ray_actors_make_the_same_rows_as_processes(tmp_path: Path, cluster: str) -> None:
    closed = [*FAST, "workload.iterations=40", "workload.concurrency=4", "workload.workers=2",
              "++matrix.model=[haiku-4-5,sonnet-4-5]"]
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    assert latlab(*closed, cwd=tmp_path / "p").returncode == 0
    done = latlab(*closed, "workload.backend=ray", f"workload.ray.address={cluster}",
                  cwd=tmp_path / "r")
    assert done.returncode == 0, done.stderr
    by_ray, by_processes = keys(tmp_path / "r/results"), keys(tmp_path / "p/results")
    # 2 cells x (40 + 4 warm-ups: one a stream)
    assert len(by_ray) == len(set(by_ray)) == 88 and set(by_ray) == set(by_processes)
    pids = {f.name.split("-")[2] for f in (tmp_path / "r/results").glob("requests/*/*")}
    run = the_run(tmp_path / "r/results")
    actors = json.loads(str(run["actors_json"]))
    assert {str(a["pid"]) for a in actors} == pids and len(pids) == 2  # each actor wrote its own
    assert run["backend"] == "ray" and run["requests"] == 88 and run["status"] == "finished"
    assert [a["rows"] for a in actors] == [44, 44] and run["hosts"] == [actors[0]["host"]]
    assert all(abs(a["clock_offset_ms"]) < 50 and a["cpu_pct"] is not None for a in actors)


@pytest.mark.optional
@pytest.mark.slow
@pytest.mark.timing
def test_the_open_loop_rate_is_kept_across_two_actors(tmp_path: Path, cluster: str) -> None:
    done = latlab(*FAST, "workload.iterations=200", "workload.rate=100", "workload.workers=2",
                  "workload.backend=ray", f"workload.ray.address={cluster}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = sorted(request_rows(tmp_path / "results"), key=lambda r: num(r["scheduled_ms"]))
    assert len(rows) == 201 and [r["worker"] for r in rows[:4]] == [0, 1, 0, 1]
    sent = sorted(num(r["scheduled_ms"]) + num(r["send_delay_ms"]) for r in rows)
    assert (len(sent) - 1) / (sent[-1] - sent[0]) * 1000 == pytest.approx(100, rel=0.02)
    delays = sorted(num(r["send_delay_ms"]) for r in rows)
    assert delays[len(delays) // 2] < 2.0  # each actor keeps its share of the global schedule


@pytest.mark.optional
@pytest.mark.slow
def test_a_bottleneck_actor_is_named(tmp_path: Path, cluster: str) -> None:
    done = latlab(*FAST, "workload.iterations=20", "workload.concurrency=4", "workload.workers=2",
                  "workload.max_client_lag_ms=0.001", "workload.backend=ray",
                  f"workload.ray.address={cluster}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = the_run(tmp_path / "results")
    labels = [f"{a['index']}@{a['host']}" for a in json.loads(str(run["actors_json"]))]
    assert run["bottleneck_actors"] == labels and len(labels) == 2
    (line,) = [x for x in done.stderr.splitlines() if "actors were the client bottleneck" in x]
    assert line.startswith("latlab: WARNING: 2 of 2 actors") and all(x in line for x in labels)
    assert "workload.workers=3" in line and "loop lag p99" in line


@pytest.mark.optional
@pytest.mark.slow
def test_a_killed_actor_leaves_readable_data_and_a_resumable_run(tmp_path: Path,
                                                                  cluster: str) -> None:
    args = [*FAST, "workload.iterations=400", "workload.concurrency=8", "workload.workers=2",
            "profile.models.default.ttft_ms.median=100", "workload.backend=ray",
            f"workload.ray.address={cluster}"]
    proc = subprocess.Popen([sys.executable, "-m", "latlab", "run", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim = an_actor_pid(tmp_path / "results", timeout_s=60)
    os.kill(victim, signal.SIGKILL)  # our actor: its pid is in the name of a file it wrote
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "lost" in stderr and "resume=" in stderr, stderr
    rows, run = request_rows(tmp_path / "results"), the_run(tmp_path / "results")
    assert 0 < len(rows) < 408 and run["requests"] == len(rows) and run["status"] == "failed"
    assert run["actors_lost"] == [f"{a['index']}@{a['host']}"
                                  for a in json.loads(str(run["actors_json"]))
                                  if a["pid"] == victim]
    assert num(run["requests_lost"]) > 0
    run_id = stderr.split("resume=")[1].split()[0]
    done = latlab(*args, f"resume={run_id}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    resumed = keys(tmp_path / "results")
    assert len(resumed) == len(set(resumed)) == 408  # 400 + 8 warm-ups, one a stream


@pytest.mark.optional
@pytest.mark.slow
@pytest.mark.skipif(not has_moto, reason="moto not installed (pip install 'moto[server]')")
def test_actors_write_one_dataset_straight_to_s3(tmp_path: Path, cluster: str,
                                                 s3_env: dict[str, str]) -> None:  # noqa: F811
    make_bucket = "import boto3; boto3.client('s3').create_bucket(Bucket='latlab-test')"
    subprocess.run([sys.executable, "-c", make_bucket], env=s3_env, check=True, timeout=60)
    where = "s3://latlab-test/ray"
    done = latlab(*FAST, f"results_dir={where}", f"hydra.run.dir={tmp_path}/hydra",
                  "workload.iterations=20", "workload.concurrency=4", "workload.workers=2",
                  "workload.backend=ray", f"workload.ray.address={cluster}", cwd=tmp_path,
                  env=s3_env)
    assert done.returncode == 0, done.stderr[-3000:]
    query = subprocess.run(
        [sys.executable, "-m", "latlab", "sql", "SELECT count(*) AS n, count(DISTINCT "
         "(cell, iteration, warmup)) AS k, count(DISTINCT run_id) AS runs, max(backend) AS b, "
         "max(len(hosts)) AS h FROM requests JOIN runs USING (run_id)", "--results", where,
         "--format", "csv"], cwd=tmp_path, env=s3_env, capture_output=True, text=True,
        timeout=120)
    assert query.returncode == 0, query.stderr
    assert query.stdout.split() == ["n,k,runs,b,h", "24,24,1,ray,1"]
    assert not (tmp_path / "s3:").exists()


def an_actor_pid(results: Path, timeout_s: float) -> int:
    """The pid of an actor that has written rows (the part file names carry it)."""
    deadline = time.monotonic() + timeout_s
    while not (files := list(results.glob("requests/*/part-*.parquet"))):
        assert time.monotonic() < deadline, "no request rows written in time"
        time.sleep(0.1)
    return int(files[0].name.split("-")[2])
