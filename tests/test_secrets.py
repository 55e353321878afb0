"""No key, secret or token ever reaches Parquet, logs, Hydra's saved configs or reports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from latlab.runner.core.secrets import MASK, redact
from tests.thread_server import serving

FAKE = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-LATLABFAKEKEY-0123456789abcdef",
    "AWS_SECRET_ACCESS_KEY": "latlabFakeAwsSecret/0123456789abcdefXYZ",
    "AWS_SESSION_TOKEN": "latlabFakeSessionToken0123456789",
    "VERTEX_ACCESS_TOKEN": "ya29.latlabFakeBearerToken0123456789",
}


async def echo_headers(request: web.Request) -> web.Response:
    """A hostile upstream: a 400 whose error message quotes the request's headers."""
    quoted = "; ".join(f"{k}={v}" for k, v in request.headers.items())
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": quoted}}
    return web.json_response(body, status=400, headers={"request-id": "req_echo"})


@pytest.fixture()
def echo_server() -> Iterator[str]:
    app = web.Application()
    app.router.add_post("/v1/messages", echo_headers)
    with serving(app) as url:
        yield url


def test_redact_masks_env_values_and_key_shapes() -> None:
    text = f"x-api-key={FAKE['ANTHROPIC_API_KEY']} and AKIAABCDEFGHIJKLMNOP, Bearer abc.def12345"
    masked = redact(text, [FAKE["ANTHROPIC_API_KEY"]])
    assert masked is not None and FAKE["ANTHROPIC_API_KEY"] not in masked
    assert "AKIA" not in masked and "abc.def12345" not in masked and MASK in masked


def test_a_sweep_with_fake_secrets_writes_none_of_them(tmp_path: Path, echo_server: str) -> None:
    env = {**os.environ, **FAKE}
    common = ["workload.iterations=2", "workload.warmup=0", "profile=fast"]
    runs = [
        ["run", "-m", "model=haiku-4-5,sonnet-4-5", *common],
        ["run", "provider=anthropic", f"provider.base_url={echo_server}", *common],
    ]
    for args in runs:
        done = subprocess.run([sys.executable, "-m", "latlab", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        for secret in FAKE.values():
            assert secret not in done.stdout + done.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in written)
    assert any(p.name == "config.yaml" for p in written)  # Hydra's saved config is checked too
    for path in written:
        content = path.read_bytes()
        for secret in FAKE.values():
            assert secret.encode() not in content, f"{secret[:12]}… leaked into {path}"
    sql = subprocess.run([sys.executable, "-m", "latlab", "sql",
                          "SELECT error_message FROM requests WHERE error_type IS NOT NULL"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert MASK in sql.stdout  # the echoed header was recorded, redacted
