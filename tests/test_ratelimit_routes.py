"""Rate limits on every emulator route, each in its provider's wire format, checked through real
sockets with the real clients (the official SDKs, boto3 signing with SigV4, httpx), and the
rows latlab's providers make of them.

One emulator for the module: 2 requests, 60 input tokens and 1000 tokens per minute per key.
Every test draws from keys of its own (API key, AWS access key and region, Google project and
region), so the tests do not share buckets.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import anthropic
import boto3
import httpx
import openai
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from drive import send_in_turn
from emulators import provider_profile

from latlab.providers.bedrock import build as build_bedrock
from latlab.providers.bedrock import resolve_endpoint as bedrock_endpoint
from latlab.providers.emulator import RunningEmulator, start_emulator
from latlab.providers.emulator.ratelimit import RateLimitProfile
from latlab.providers.http import make_http_client
from latlab.providers.openai_compat import OpenAICompatProvider
from latlab.providers.vertex import BearerToken, VertexProvider
from latlab.runner.core.protocol import RequestSpec
from latlab.runner.core.records import Measurement
from tests.test_clients import IDS, sdk_provider

LIMITS = {"requests": 2.0, "input_tokens": 60.0, "tokens": 1000.0}
MODEL = "claude-haiku-4-5"
VERTEX_MODEL = "claude-haiku-4-5@20251001"
BEDROCK_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SHORT: Any = [{"role": "user", "content": "count"}]  # the SDKs' message params
THROTTLING_TYPE = "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
QUOTA_HEADERS = re.compile(r"(anthropic-ratelimit|x-ratelimit)-|retry-after", re.IGNORECASE)


@pytest.fixture(scope="module")
def limited() -> Iterator[RunningEmulator]:
    with start_emulator(replace(provider_profile(),
                                rate_limits=RateLimitProfile(LIMITS))) as running:
        yield running


def spec(model: str, stream: bool = True) -> RequestSpec:
    return RequestSpec(model_id=model, max_tokens=50, stream=stream, timeout_s=5.0,
                       messages=SHORT)


def quota_headers(headers: Any) -> list[str]:
    return [name for name in headers if QUOTA_HEADERS.match(name)]


# ---------------------------------------------------------------------------- Anthropic


def test_messages_route_429_in_anthropic_shape(limited: RunningEmulator) -> None:
    client = anthropic.Anthropic(api_key="rl-anthropic", base_url=limited.base_url,
                                 max_retries=0)
    for left in ("1", "0"):
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=5,
                                                       messages=SHORT)
        assert raw.headers["anthropic-ratelimit-requests-remaining"] == left
        assert raw.headers["anthropic-ratelimit-tokens-limit"] == "1000"
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model=MODEL, max_tokens=5, messages=SHORT)
    assert refused.value.status_code == 429
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert refused.value.response.headers["retry-after"] == "30"  # 2/min: one every 30 s
    client.close()


# ---------------------------------------------------------------------------- OpenAI


def test_chat_completions_route_429_in_openai_shape(limited: RunningEmulator) -> None:
    client = openai.OpenAI(api_key="rl-openai", base_url=limited.base_url + "/v1",
                           max_retries=0)
    for left in ("1", "0"):
        raw = client.chat.completions.with_raw_response.create(model=MODEL, max_tokens=5,
                                                               messages=SHORT)
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-remaining-requests"] == left
        assert raw.headers["x-ratelimit-limit-tokens"] == "1000"
        assert re.fullmatch(r"\d+(\.\d+)?s|\d+ms", raw.headers["x-ratelimit-reset-requests"])
        assert not any(h.startswith("anthropic-") for h in raw.headers)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=MODEL, max_tokens=5, messages=SHORT)
    error = refused.value
    assert (error.status_code, error.code, error.type) == (429, "rate_limit_exceeded", "requests")
    assert isinstance(error.body, dict)
    assert re.fullmatch(rf"Rate limit reached for {MODEL} on requests per min \(RPM\): "
                        r"Limit 2\. Please try again in \d+(\.\d+)?s\.", error.body["message"])
    assert error.response.headers["retry-after"] == "30"
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    client.close()


def test_openai_compat_rows_carry_the_limits(limited: RunningEmulator) -> None:
    rows = send_in_turn(lambda: OpenAICompatProvider(make_http_client(), limited.base_url,
                                                     "rl-openai-rows"), [spec(MODEL)] * 3)
    assert [m.error_type for m in rows] == [None, None, "rate_limited"]
    assert [m.ratelimit_requests_remaining for m in rows] == [1, 0, 0]
    assert {m.ratelimit_requests_limit for m in rows} == {2}
    assert rows[0].ratelimit_tokens_limit == 1000 and rows[0].ratelimit_tokens_remaining
    assert rows[0].ratelimit_requests_reset_s is not None
    assert [m.retry_after_s for m in rows] == [None, None, 30.0]
    assert rows[2].status == 429 and rows[2].error_message is not None
    assert rows[2].error_message.startswith("429 requests: Rate limit reached for")


# ---------------------------------------------------------------------------- Bedrock


def bedrock_client(emulator: RunningEmulator, access_key: str) -> Any:
    return boto3.client("bedrock-runtime", endpoint_url=emulator.base_url,
                        region_name="us-east-1", aws_access_key_id=access_key,
                        aws_secret_access_key="dummy",
                        config=Config(retries={"total_max_attempts": 1}))


def invoke_body(text: str = "count") -> str:
    return json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5,
                       "messages": [{"role": "user", "content": text}]})


def converse_kwargs() -> dict[str, Any]:
    return {"modelId": BEDROCK_MODEL,
            "messages": [{"role": "user", "content": [{"text": "count"}]}]}


def test_bedrock_throttles_every_operation_with_a_throttling_exception(
        limited: RunningEmulator) -> None:
    client = bedrock_client(limited, "AKIDRATELIMIT1")
    client.converse(**converse_kwargs())
    stream = client.invoke_model_with_response_stream(modelId=BEDROCK_MODEL, body=invoke_body())
    assert not quota_headers(stream["ResponseMetadata"]["HTTPHeaders"])  # none, even when ok
    list(stream["body"])
    calls = [("invoke_model", {"modelId": BEDROCK_MODEL, "body": invoke_body()}),
             ("converse_stream", converse_kwargs())]
    for method, kwargs in calls:
        with pytest.raises(ClientError) as refused:
            getattr(client, method)(**kwargs)
        response = refused.value.response
        assert response["Error"] == {"Code": "ThrottlingException", "Message":
                                     "Too many requests, please wait before trying again."}
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-amzn-errortype"] == THROTTLING_TYPE
        assert not quota_headers(headers)  # Bedrock sends no quota headers, no retry-after
    bedrock_client(limited, "AKIDRATELIMIT2").converse(**converse_kwargs())  # per access key
    client.close()


def test_bedrock_token_throttle_says_tokens(limited: RunningEmulator) -> None:
    client = bedrock_client(limited, "AKIDRATELIMIT3")
    client.invoke_model(modelId=BEDROCK_MODEL, body=invoke_body("x" * 400))  # 100 of 60 tokens
    with pytest.raises(ClientError) as refused:
        client.invoke_model(modelId=BEDROCK_MODEL, body=invoke_body())
    assert refused.value.response["Error"]["Message"] == (
        "Too many tokens, please wait before trying again.")
    client.close()


def bedrock_rows(emulator: RunningEmulator, client: str, region: str) -> list[Measurement]:
    cfg = {"name": "bedrock", "kind": "bedrock", "api": "converse_stream", "client": client,
           "region": region, "max_connections": 0}
    endpoint = bedrock_endpoint(cfg, emulator.base_url)

    async def go() -> list[Measurement]:
        provider = build_bedrock(cfg, endpoint)
        try:
            return [await provider.send(spec(BEDROCK_MODEL)) for _ in range(3)]
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(("client", "region"), [("httpx", "eu-west-1"), ("boto3", "eu-west-2")])
def test_bedrock_rows_are_rate_limited(limited: RunningEmulator, client: str,
                                       region: str) -> None:
    rows = bedrock_rows(limited, client, region)  # one key per region (Bedrock's quotas)
    assert [m.error_type for m in rows] == [None, None, "rate_limited"]
    assert rows[2].status == 429 and "ThrottlingException" in (rows[2].error_message or "")
    assert all(m.ratelimit_requests_limit is None and m.retry_after_s is None for m in rows)


# ---------------------------------------------------------------------------- Vertex


def vertex_url(emulator: RunningEmulator, project: str) -> str:
    return (f"{emulator.base_url}/v1/projects/{project}/locations/us-east5/publishers/"
            f"anthropic/models/{VERTEX_MODEL}:rawPredict")


def test_vertex_quota_429_in_google_shape(limited: RunningEmulator) -> None:
    body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 5, "messages": SHORT}
    auth = {"authorization": "Bearer t"}
    with httpx.Client() as http:
        answers = [http.post(vertex_url(limited, "rl-proj"), json=body, headers=auth)
                   for _ in range(3)]
        other = http.post(vertex_url(limited, "rl-other-proj"), json=body, headers=auth)
    assert [a.status_code for a in answers] == [200, 200, 429] and other.status_code == 200
    (error,) = answers[2].json()
    assert error["error"]["code"] == 429 and error["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert error["error"]["message"].startswith(
        "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model")
    assert not any(quota_headers(a.headers) for a in answers)


def test_anthropic_vertex_sdk_sees_a_rate_limit_error(limited: RunningEmulator) -> None:
    client = anthropic.AnthropicVertex(region="us-east5", project_id="rl-sdk-proj",
                                       access_token="t", base_url=limited.base_url + "/v1",
                                       max_retries=0)
    for _ in range(2):
        client.messages.create(model=VERTEX_MODEL, max_tokens=5, messages=SHORT)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=VERTEX_MODEL, max_tokens=5, messages=SHORT)
    client.close()


def test_vertex_rows_are_rate_limited(limited: RunningEmulator) -> None:
    rows = send_in_turn(lambda: VertexProvider(make_http_client(), limited.base_url,
                                               BearerToken("t"), "rl-rows-proj", "us-east5"),
                        [spec(VERTEX_MODEL)] * 3)
    assert [m.error_type for m in rows] == [None, None, "rate_limited"]
    assert rows[2].status == 429
    assert rows[2].error_message is not None
    assert rows[2].error_message.startswith("429 RESOURCE_EXHAUSTED: Quota exceeded")


# ---------------------------------------------------------------------------- SDK clients


@pytest.mark.parametrize("kind", ["anthropic", "openai_compat", "bedrock", "vertex"])
def test_sdk_client_rows_are_rate_limited(limited: RunningEmulator, kind: str) -> None:
    """latlab's ``client: sdk`` providers (the official SDKs, retries off) on every route."""

    async def go() -> list[Measurement]:
        provider = sdk_provider(kind, limited.base_url)
        try:
            return [await provider.send(spec(IDS[kind])) for _ in range(3)]
        finally:
            await provider.aclose()

    rows = asyncio.run(go())
    assert [m.error_type for m in rows] == [None, None, "rate_limited"]
    assert rows[2].status == 429
    reports = kind in ("anthropic", "openai_compat")  # Bedrock and Vertex send no quota headers
    assert [m.ratelimit_requests_remaining for m in rows] == ([1, 0, 0] if reports else [None] * 3)
    assert rows[2].retry_after_s == (30.0 if reports else None)
