"""Bedrock: the emulator's routes (checked with boto3) and the latlab provider, over loopback."""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import httpx
import pyarrow.parquet as pq
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from in_process import latlab_here
from on_time import LATE_MS, assert_on_time

from latlab.providers.bedrock import (
    DUMMY_CREDENTIALS,
    BedrockProvider,
    Boto3BedrockProvider,
    build,
    resolve_endpoint,
)
from latlab.providers.emulator import RunningEmulator, start_emulator
from latlab.providers.emulator.bedrock_wire import BLOCKED_MESSAGE
from latlab.providers.emulator.profile import (
    BedrockLayer,
    Distribution,
    EmulatorProfile,
    GuardrailLayer,
)
from latlab.runner.core.errors import ConfigError, CredentialsError
from latlab.runner.core.protocol import Provider, RequestSpec
from latlab.runner.core.records import Measurement

ROOT = Path(__file__).resolve().parents[1]
TTFB_MS, TTFT_MS, ITL_MS, TOKENS = 15.0, 40.0, 4.0, 10
OVERHEAD_MS, GUARD_MS, GUARD_SHARE = 30.0, 40.0, 0.5
MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
MESSAGES = [{"role": "user", "content": "count to ten"}]
GUARDRAIL = {"name": "content_filter", "identifier": "gr-latlab-demo", "version": "1",
             "trace": True}
PLANNED_TOTAL_MS = TTFT_MS + (TOKENS - 1) * ITL_MS + OVERHEAD_MS


def profile(intervene_rate: float = 0.0) -> EmulatorProfile:
    base = EmulatorProfile.fixed(TTFB_MS, TTFT_MS, ITL_MS, TOKENS)
    return replace(base, bedrock=BedrockLayer({"default": Distribution(OVERHEAD_MS)}),
                   guardrail=GuardrailLayer(Distribution(GUARD_MS), GUARD_SHARE, intervene_rate))


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(profile()) as running:
        yield running


@pytest.fixture()
def runtime(emulator: RunningEmulator) -> Iterator[Any]:
    client = boto3.client("bedrock-runtime", endpoint_url=emulator.base_url,
                          region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="dummy",
                          config=Config(retries={"total_max_attempts": 1}))
    yield client
    client.close()


def spec(stream: bool = True, guardrail: dict[str, Any] | None = None) -> RequestSpec:
    return RequestSpec(model_id=MODEL, messages=MESSAGES, max_tokens=100, stream=stream,
                       timeout_s=5.0, system="Be terse.", guardrail=guardrail)


def provider_cfg(client: str = "httpx", api: str = "invoke_stream",
                 transport: str = "aiohttp") -> dict[str, Any]:
    return {"name": "bedrock", "kind": "bedrock", "api": api, "client": client,
            "transport": transport, "region": "us-east-1", "max_connections": 0}


def add_fault(provider: Provider, fault: str, timeout_s: float) -> None:
    """Ask the emulator for a fault: an extra (unsigned) request header."""
    if isinstance(provider, BedrockProvider):
        provider.client.headers["x-latlab-fault"] = fault
        return
    assert isinstance(provider, Boto3BedrockProvider)

    def header(request: Any, **_: Any) -> None:
        request.headers["x-latlab-fault"] = fault

    provider.client_for(timeout_s).meta.events.register("before-send.bedrock-runtime", header)


def send_all(base_url: str, cfg: dict[str, Any], specs: list[RequestSpec],
             fault: str | None = None, parallel: bool = False) -> list[Measurement]:
    endpoint = resolve_endpoint(cfg, base_url)

    async def go() -> list[Measurement]:
        provider = build(cfg, endpoint)
        if fault:
            add_fault(provider, fault, specs[0].timeout_s)
        try:
            if parallel:
                return list(await asyncio.gather(*(provider.send(s) for s in specs)))
            return [await provider.send(s) for s in specs]
        finally:
            await provider.aclose()

    return asyncio.run(go())


# ------------------------------------------------------------------ emulator, checked by boto3


def invoke_body() -> str:
    return json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
                       "messages": MESSAGES})


def test_boto3_invoke_model(runtime: Any) -> None:
    response = runtime.invoke_model(modelId=MODEL, body=invoke_body())
    message = json.loads(response["body"].read())
    assert message["content"][0]["text"] == "".join(f" {i + 1}" for i in range(TOKENS))
    assert message["usage"]["output_tokens"] == TOKENS and message["stop_reason"] == "end_turn"
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-output-token-count"] == str(TOKENS)
    assert int(headers["x-amzn-bedrock-invocation-latency"]) == round(PLANNED_TOTAL_MS)
    assert response["ResponseMetadata"]["RequestId"] == headers["x-amzn-requestid"]


def test_boto3_invoke_model_with_response_stream(runtime: Any) -> None:
    response = runtime.invoke_model_with_response_stream(
        modelId=MODEL, body=invoke_body(), guardrailIdentifier="gr-latlab-demo",
        guardrailVersion="1")
    assert response["contentType"] == "application/json"
    events = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    types = [e["type"] for e in events]
    assert types.count("content_block_delta") == TOKENS and types[-1] == "message_stop"
    metrics = events[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["outputTokenCount"] == TOKENS
    guarded_total = PLANNED_TOTAL_MS + GUARD_MS * GUARD_SHARE  # the client-only half left out
    assert metrics["invocationLatency"] == round(guarded_total)
    assert events[-1]["amazon-bedrock-guardrailAction"] == "NONE"


def test_boto3_converse_and_converse_stream(runtime: Any) -> None:
    messages = [{"role": "user", "content": [{"text": "count to ten"}]}]
    whole = runtime.converse(modelId=MODEL, messages=messages, inferenceConfig={"maxTokens": 4})
    assert whole["usage"]["outputTokens"] == 4 and whole["stopReason"] == "max_tokens"
    assert whole["output"]["message"]["content"][0]["text"] == " 1 2 3 4"
    assert whole["metrics"]["latencyMs"] > OVERHEAD_MS
    events = list(runtime.converse_stream(modelId=MODEL, messages=messages)["stream"])
    names = [next(iter(e)) for e in events]
    assert names[0] == "messageStart" and names.count("contentBlockDelta") == TOKENS
    assert names[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert events[-1]["metadata"]["usage"]["outputTokens"] == TOKENS
    assert events[-1]["metadata"]["metrics"]["latencyMs"] == round(PLANNED_TOTAL_MS)


def test_boto3_sees_throttling_as_its_modelled_exception(runtime: Any) -> None:
    def header(request: Any, **_: Any) -> None:
        request.headers["x-latlab-fault"] = "throttling"

    runtime.meta.events.register("before-send.bedrock-runtime", header)
    with pytest.raises(runtime.exceptions.ThrottlingException):
        runtime.invoke_model(modelId=MODEL, body=invoke_body())


def test_missing_authorization_is_refused_like_aws(emulator: RunningEmulator) -> None:
    url = f"{emulator.base_url}/model/{quote(MODEL, safe='')}/invoke"
    body = json.loads(invoke_body())
    with httpx.Client(timeout=5.0) as client:
        refused = client.post(url, json=body)
        with_key = client.post(url, json=body, headers={"Authorization": "Bearer api-key"})
    assert refused.status_code == 403
    assert refused.headers["x-amzn-errortype"].startswith("MissingAuthenticationTokenException")
    assert refused.json() == {"message": "Missing Authentication Token"}
    assert with_key.status_code == 200  # Bedrock API keys


# ------------------------------------------------------------------ the latlab provider


CLIENTS = [("httpx", "aiohttp"), ("httpx", "httpcore"), ("boto3", "aiohttp")]


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
@pytest.mark.parametrize("api", ["invoke_stream", "converse_stream"])
@pytest.mark.parametrize(("client", "transport"), CLIENTS)
def test_streamed_timings_match_the_profile_plus_the_bedrock_layer(
        emulator: RunningEmulator, client: str, transport: str, api: str) -> None:
    rows = send_all(emulator.base_url, provider_cfg(client, api, transport), [spec()] * 6)[1:]
    assert all(r.ok for r in rows), rows[0].error_message
    # boto3's TTFB is stamped when the call returns: after botocore has parsed the headers;
    # its stream is read in a worker thread, which shares the GIL with the embedded emulator
    ttfb_late, late = (10, 6) if client == "boto3" else (LATE_MS, LATE_MS)
    assert_on_time((r.ttfb_ms for r in rows), TTFB_MS + OVERHEAD_MS, "ttfb", ttfb_late)
    assert_on_time((r.ttft_ms for r in rows), TTFT_MS + OVERHEAD_MS, "ttft", late)
    assert_on_time((r.total_ms for r in rows), PLANNED_TOTAL_MS, "total", late)
    assert abs(statistics.median(g for r in rows for g in r.itl_ms) - ITL_MS) < 1.5
    row = rows[0]
    assert row.server_latency_ms == round(PLANNED_TOTAL_MS)
    if api == "invoke_stream":
        assert row.server_first_byte_ms == TTFB_MS + OVERHEAD_MS
    assert row.output_tokens == TOKENS and row.input_tokens and row.stop_reason == "end_turn"
    assert row.request_id and len(row.request_id) == 36 and row.guardrail_action is None


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
@pytest.mark.parametrize("api", ["invoke", "converse"])
@pytest.mark.parametrize("client", ["httpx", "boto3"])
def test_whole_responses(emulator: RunningEmulator, client: str, api: str) -> None:
    rows = send_all(emulator.base_url, provider_cfg(client, api), [spec(stream=False)] * 2)
    row = rows[1]
    assert row.ok, row.error_message
    late = 6 if client == "boto3" else LATE_MS  # boto3 reads in a thread: GIL hand-offs
    assert row.ttft_ms == row.total_ms
    assert_on_time([row.total_ms], PLANNED_TOTAL_MS, "total", late)
    assert row.server_latency_ms == round(PLANNED_TOTAL_MS) and row.output_tokens == TOKENS


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_concurrent_requests_on_both_clients(emulator: RunningEmulator) -> None:
    for client in ("httpx", "boto3"):
        rows = send_all(emulator.base_url, provider_cfg(client), [spec()] * 12, parallel=True)
        assert all(r.ok for r in rows), [r.error_message for r in rows if not r.ok]
        assert max(r.ttft_ms or 0 for r in rows) < TTFT_MS + OVERHEAD_MS + 40


FAULTS = [("bad_crc", "protocol_error"), ("truncate", "truncated"),
          ("throttling", "rate_limited"), ("stream_exception", "stream_error")]


@pytest.mark.parametrize("api", ["invoke_stream", "converse_stream"])
@pytest.mark.parametrize("client", ["httpx", "boto3"])
@pytest.mark.parametrize(("fault", "error_type"), FAULTS)
def test_faults_become_typed_rows(emulator: RunningEmulator, client: str, api: str, fault: str,
                                  error_type: str) -> None:
    [row] = send_all(emulator.base_url, provider_cfg(client, api), [spec()], fault=fault)
    assert row.error_type == error_type, row.error_message
    if fault == "stream_exception":
        assert "modelStreamErrorException" in (row.error_message or "")
    if fault == "throttling":
        assert row.status == 429 and "ThrottlingException" in (row.error_message or "")
    else:
        assert row.status == 200 and row.ttft_ms is not None  # a few tokens came first


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
@pytest.mark.parametrize("api", ["invoke_stream", "converse_stream", "invoke"])
def test_guardrail_action_on_the_row(api: str) -> None:
    with start_emulator(profile(intervene_rate=1.0)) as blocking:
        rows = send_all(blocking.base_url, provider_cfg(api=api),
                        [spec(stream=api != "invoke", guardrail=GUARDRAIL)] * 2)
    row = rows[1]  # the first also opened the connection
    assert row.ok and row.guardrail_action == "INTERVENED", row.error_message
    if api == "converse_stream":
        assert row.stop_reason == "guardrail_intervened"
    assert row.output_tokens == len(BLOCKED_MESSAGE.split())  # the blocked message, not the model
    client_total = TTFT_MS + OVERHEAD_MS + GUARD_MS + (len(BLOCKED_MESSAGE.split()) - 1) * ITL_MS
    assert abs((row.total_ms or 0) - client_total) < 4
    assert row.server_latency_ms == round(client_total - GUARD_MS * (1 - GUARD_SHARE))


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_unguarded_and_passed_guardrail(emulator: RunningEmulator) -> None:
    rows = send_all(emulator.base_url, provider_cfg(),
                    [spec(), spec(), spec(guardrail=GUARDRAIL)])[1:]  # the first connects
    assert rows[0].guardrail_action is None and rows[1].guardrail_action == "NONE"
    assert (rows[1].ttft_ms or 0) - (rows[0].ttft_ms or 0) == pytest.approx(GUARD_MS, abs=4)


# ------------------------------------------------------------------ what goes on the wire


@dataclass
class Captured:
    raw_path: str = ""
    headers: dict[str, str] | None = None  # lower-cased names
    body: bytes = b""


async def capture_server(captured: Captured) -> tuple[web.AppRunner, str]:
    """A one-route server that records the request and answers like InvokeModel."""

    async def handle(request: web.Request) -> web.Response:
        captured.raw_path = request.raw_path
        captured.headers = {k.lower(): v for k, v in request.headers.items()}
        captured.body = await request.read()
        body = {"type": "message", "content": [{"type": "text", "text": "no"}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1},
                "amazon-bedrock-guardrailAction": "INTERVENED"}
        headers = {"x-amzn-RequestId": "r-1", "X-Amzn-Bedrock-Invocation-Latency": "12"}
        return web.json_response(body, headers=headers)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def capture(cfg: dict[str, Any], request: RequestSpec) -> tuple[Captured, Measurement, str]:
    captured = Captured()

    async def go() -> tuple[Measurement, str]:
        runner, url = await capture_server(captured)
        provider = build(cfg, resolve_endpoint(cfg, url))
        try:
            return await provider.send(request), url
        finally:
            await provider.aclose()
            await runner.cleanup()

    row, url = asyncio.run(go())
    return captured, row, url


def expected_signature(captured: Captured, base_url: str) -> str:
    """Re-sign what arrived (path as received, signed headers, body) with the same key."""
    assert captured.headers is not None
    headers = captured.headers
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(method="POST", url=base_url + captured.raw_path, data=captured.body,
                         headers={name: headers[name] for name in signed})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(DUMMY_CREDENTIALS.get_frozen_credentials(), "bedrock", "us-east-1")
    canonical = signer.canonical_request(request)
    signature: str = signer.signature(signer.string_to_sign(request, canonical), request)
    return signature


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_invoke_request_is_signed_for_the_path_on_the_wire(transport: str) -> None:
    cfg = provider_cfg(api="invoke", transport=transport)
    captured, row, url = capture(cfg, spec(stream=False, guardrail=GUARDRAIL))
    assert captured.headers is not None
    assert captured.raw_path.startswith("/model/us.anthropic.claude-haiku-4-5-20251001-v1")
    assert captured.raw_path.endswith("/invoke")
    authorization = captured.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDLATLABDUMMY/")
    assert authorization.endswith("Signature=" + expected_signature(captured, url))
    assert captured.headers["x-amzn-bedrock-guardrailidentifier"] == "gr-latlab-demo"
    assert captured.headers["x-amzn-bedrock-guardrailversion"] == "1"
    assert captured.headers["x-amzn-bedrock-trace"] == "ENABLED"
    body = json.loads(captured.body)
    assert body["anthropic_version"] == "bedrock-2023-05-31" and "model" not in body
    assert row.ok and row.guardrail_action == "INTERVENED" and row.server_latency_ms == 12
    assert row.request_id == "r-1" and row.output_tokens == 1


def test_converse_request_shape() -> None:
    captured, _, _ = capture(provider_cfg(api="converse"), spec(stream=False, guardrail=GUARDRAIL))
    assert captured.raw_path.endswith("/converse")
    body = json.loads(captured.body)
    assert body["messages"] == [{"role": "user", "content": [{"text": "count to ten"}]}]
    assert body["system"] == [{"text": "Be terse."}]
    assert body["inferenceConfig"] == {"maxTokens": 100}
    assert body["guardrailConfig"] == {"guardrailIdentifier": "gr-latlab-demo",
                                       "guardrailVersion": "1", "trace": "enabled"}


# ------------------------------------------------------------------ config and credentials


@pytest.fixture()
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment with no AWS credentials anywhere (and no instance metadata lookups)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_BEARER_TOKEN_BEDROCK", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_real_endpoint_uses_the_credential_chain(no_aws: pytest.MonkeyPatch) -> None:
    cfg = {**provider_cfg(), "region": "eu-west-1", "endpoint_url": None}
    with pytest.raises(CredentialsError, match="provider.bedrock: no AWS credentials found"):
        resolve_endpoint(cfg, None)
    no_aws.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    no_aws.setenv("AWS_SECRET_ACCESS_KEY", "dummy")
    endpoint = resolve_endpoint(cfg, None)
    assert endpoint.base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert endpoint.credentials.access_key == "AKIDEXAMPLE" and not endpoint.emulated


def test_local_endpoint_url_and_unknown_options(no_aws: pytest.MonkeyPatch) -> None:
    local = resolve_endpoint({**provider_cfg(), "endpoint_url": "http://127.0.0.1:9"}, None)
    assert local.base_url == "http://127.0.0.1:9" and local.credentials is DUMMY_CREDENTIALS
    with pytest.raises(ConfigError, match="provider.api"):
        resolve_endpoint(provider_cfg(api="chat"), "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="provider.client"):
        resolve_endpoint(provider_cfg(client="curl"), "http://127.0.0.1:9")


def test_profile_layers_parse_strictly() -> None:
    text = (ROOT / "conf" / "profile" / "default.yaml").read_text()
    layers = EmulatorProfile.from_yaml(text)
    assert layers.bedrock.overhead_for(MODEL).median == 700
    assert layers.bedrock.overhead_for("us.anthropic.claude-opus-4-6-v1").median == 30
    assert layers.guardrail.server_share == pytest.approx(0.96)
    data = {"models": {"default": {"ttfb_ms": 1, "ttft_ms": 2, "itl_ms": 1, "output_tokens": 2}}}
    single = EmulatorProfile.from_mapping({**data, "bedrock": {"overhead_ms": {"median": 5}}})
    assert single.bedrock.overhead_for("anything").median == 5
    assert EmulatorProfile.from_mapping(data).bedrock.overhead_for(MODEL).median == 0
    with pytest.raises(ValueError, match="unknown keys"):
        EmulatorProfile.from_mapping({**data, "guardrail": {"overhead": 5}})
    with pytest.raises(ValueError, match="server_share"):
        EmulatorProfile.from_mapping({**data, "bedrock": {"server_share": 2}})


# ------------------------------------------------------------------ end to end


def test_guardrail_impact_experiment_end_to_end(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "experiment=guardrail_impact", "workload.iterations=2", "workload.warmup=0",
            "profile=fast", f"results_dir={tmp_path}"]
    done = latlab_here(args, capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "requests").to_pylist()
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for row in table:
        by_cell.setdefault(row["cell"], []).append(row)
    assert sorted(by_cell) == ["anthropic/haiku-4-5/count20/none/stream",
                               "bedrock/haiku-4-5/count20/content_filter/stream",
                               "bedrock/haiku-4-5/count20/none/stream"]
    assert all(len(rows) == 2 and all(r["error_type"] is None for r in rows)
               for rows in by_cell.values())
    guarded = by_cell["bedrock/haiku-4-5/count20/content_filter/stream"]
    assert {r["guardrail_action"] for r in guarded} == {"NONE"}
    assert all(r["server_latency_ms"] is not None for r in guarded)
    assert "provider_overhead" in done.stdout


@pytest.mark.parametrize("api", ["invoke_stream", "converse_stream"])
@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_streams_reuse_their_connection(emulator: RunningEmulator, transport: str,
                                        api: str) -> None:
    rows = send_all(emulator.base_url, provider_cfg("httpx", api, transport), [spec()] * 3)
    assert all(r.ok for r in rows), rows[0].error_message
    assert [r.new_connection for r in rows] == [True, False, False]
