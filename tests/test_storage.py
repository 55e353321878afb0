"""Results on S3-compatible storage: written by ``latlab run``, read back by ``latlab sql``.

Runs a local S3 server (moto, on 127.0.0.1) in its own process; skipped when moto is not
installed (``pip install 'moto[server]'``).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from latlab.runner.results import storage

pytestmark = [pytest.mark.optional, pytest.mark.skipif(
    importlib.util.find_spec("moto") is None,
    reason="moto not installed (pip install 'moto[server]': a local S3 server for this test)")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.1)
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1"}
    try:
        yield env
    finally:
        server.terminate()
        server.wait(timeout=10)


def latlab(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_results_go_to_s3_and_read_back(tmp_path: Path, s3_env: dict[str, str]) -> None:
    make_bucket = "import boto3; boto3.client('s3').create_bucket(Bucket='latlab-test')"
    subprocess.run([sys.executable, "-c", make_bucket], env=s3_env, check=True, timeout=60)
    where = "s3://latlab-test/team/a"
    done = latlab("run", f"results_dir={where}", f"hydra.run.dir={tmp_path}/hydra",
                  "profile=fast", "workload.warmup=1", "workload.iterations=3",
                  "workload.workers=2", cwd=tmp_path, env=s3_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert " A " in done.stdout  # the grade table was read back from S3
    query = latlab("sql", "SELECT count(*) AS n, count(DISTINCT run_id) AS runs, "
                   "max(workers) AS w FROM requests JOIN runs USING (run_id)",
                   "--results", where, "--format", "csv", cwd=tmp_path, env=s3_env)
    assert query.returncode == 0, query.stderr
    assert query.stdout.split() == ["n,runs,w", "4,1,2"]
    assert not (tmp_path / "s3:").exists()  # nothing landed in a local folder named s3:


def test_unreachable_bucket_fails_before_the_first_request(tmp_path: Path,
                                                           s3_env: dict[str, str]) -> None:
    done = latlab("run", "results_dir=s3://no-such-bucket/x", f"hydra.run.dir={tmp_path}/h",
                  "profile=fast", cwd=tmp_path, env=s3_env)
    assert done.returncode == 2 and "results_dir" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_locations() -> None:
    assert storage.remote_url(Path("s3://bucket/a/b")) == "s3://bucket/a/b"
    assert storage.remote_url("s3://bucket") == "s3://bucket"
    assert storage.remote_url(Path("results")) is None
