"""The ``client`` dimension: each official SDK, as a measured client, against the emulator."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from typing import Any

import pytest
from emulators import TOKENS, TTFT_MS
from in_process import latlab_here
from result_files import request_rows

from latlab.providers.bedrock import DUMMY_CREDENTIALS
from latlab.providers.clients import client_of, client_version
from latlab.providers.emulator import RunningEmulator
from latlab.providers.vertex import VertexAuth
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.protocol import DUMMY_KEY, Endpoint, Provider, RequestSpec
from latlab.runner.core.records import Measurement

pytest.importorskip("anthropic")
pytest.importorskip("openai")

IDS = {"anthropic": "claude-haiku-4-5-20251001", "openai_compat": "claude-haiku-4-5-20251001",
       "bedrock": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
       "vertex": "claude-haiku-4-5@20251001"}
# ``emulator``: the shared one of conftest.py (timings in tests/emulators.py)


def sdk_provider(kind: str, base_url: str) -> Provider:
    from latlab.providers.registry import kind_for

    cfg: dict[str, Any] = {"name": kind, "kind": kind, "client": "sdk", "region": "us-east1",
                           "api": "invoke_stream"}
    credentials = {"bedrock": DUMMY_CREDENTIALS, "vertex": VertexAuth("proj")}.get(kind)
    endpoint = Endpoint(base_url, None if kind == "bedrock" else DUMMY_KEY, True, credentials)
    return kind_for(kind).build(cfg, endpoint)


def send_all(kind: str, base_url: str, stream: bool, n: int) -> list[Measurement]:
    spec = RequestSpec(model_id=IDS[kind], max_tokens=100, stream=stream, timeout_s=5.0,
                       messages=[{"role": "user", "content": "count to twelve"}])

    async def go() -> list[Measurement]:
        provider = sdk_provider(kind, base_url)
        try:
            return [await provider.send(spec) for _ in range(n)]
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
@pytest.mark.parametrize("kind", ["anthropic", "bedrock", "vertex", "openai_compat"])
def test_sdk_client_parses_the_stream_and_counts_match_usage(emulator: RunningEmulator,
                                                              kind: str) -> None:
    rows = send_all(kind, emulator.base_url, True, 5)[1:]
    assert all(r.ok for r in rows), rows[0].error_message
    assert all(r.output_tokens == TOKENS and r.usage_source == "api" for r in rows)
    assert all(len(r.itl_ms) == TOKENS - 1 for r in rows)
    # events are stamped as the SDK yields them: its parsing is inside (bench/clients.py);
    # Bedrock adds the profile's Bedrock layer on top
    ttft = statistics.median(r.ttft_ms or 0 for r in rows)
    assert ttft > TTFT_MS if kind == "bedrock" else abs(ttft - TTFT_MS) < 15
    assert rows[0].input_tokens is not None and rows[0].input_tokens > 0
    assert rows[0].request_id and rows[0].status == 200


@pytest.mark.parametrize("kind", ["anthropic", "openai_compat"])
def test_sdk_client_non_streamed(emulator: RunningEmulator, kind: str) -> None:
    (row,) = send_all(kind, emulator.base_url, False, 1)
    assert row.ok and row.output_tokens == TOKENS and row.ttft_ms == row.total_ms


def test_sdk_errors_are_rows(emulator: RunningEmulator) -> None:
    async def go() -> Measurement:
        provider = sdk_provider("anthropic", emulator.base_url)
        provider.client._custom_headers["x-latlab-fault"] = "rate_limited"  # type: ignore[attr-defined]
        try:
            return await provider.send(RequestSpec(model_id=IDS["anthropic"], max_tokens=10,
                                                   stream=True, timeout_s=5.0, messages=[
                                                       {"role": "user", "content": "x"}]))
        finally:
            await provider.aclose()

    row = asyncio.run(go())
    assert row.error_type == "rate_limited" and row.status == 429


def test_unknown_client_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="provider.client: 'boto3'.*httpx, sdk"):
        client_of({"name": "anthropic", "kind": "anthropic", "client": "boto3"})
    assert client_of({"name": "bedrock", "kind": "bedrock", "client": "boto3"}) == "boto3"


def test_client_versions() -> None:
    import anthropic
    import boto3
    import httpx
    import openai

    assert client_version("anthropic", "httpx") == httpx.__version__
    assert client_version("anthropic", "sdk") == anthropic.__version__
    assert client_version("openai_compat", "sdk") == openai.__version__
    assert client_version("bedrock", "boto3") == boto3.__version__


def test_client_overhead_experiment_records_client_and_version(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", "experiment=client_overhead", "profile=fast", "workload.warmup=0",
                        "workload.iterations=1"], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    assert all(r["error_type"] is None for r in rows), rows
    seen = {(r["provider"], r["client"]) for r in rows}
    assert seen == {(p, c) for p in ("anthropic", "bedrock", "vertex", "openai_compat")
                    for c in ("httpx", "sdk")} | {("bedrock", "boto3")}
    assert all(r["client_version"] for r in rows)
    assert "HTTP Request:" not in done.stdout + done.stderr  # the SDKs' httpx logs stay quiet
