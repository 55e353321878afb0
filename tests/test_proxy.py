"""The recording proxy: the official SDK talks to the emulator through it; every call is
recorded with its timings, tokens and request id, and bytes pass through unchanged."""

from __future__ import annotations

import asyncio
import json

import anthropic
import pytest

from latlab.providers.emulator import RunningEmulator
from latlab.runner.agents.proxy import ProxiedCall, RecordingProxy, endpoint_template


def test_every_call_is_recorded(quick_emulator: RunningEmulator) -> None:
    """Through ``quick_emulator`` (conftest.py: 5 ms to the first byte, 20 ms to the first
    token, 10 tokens): the proxy's timings are never below what the emulator planned."""
    emulator = quick_emulator
    async def exchange() -> tuple[list[ProxiedCall], str, str | None, int]:
        async with RecordingProxy(emulator.base_url) as proxy:
            client = anthropic.AsyncAnthropic(base_url=proxy.base_url, api_key="dummy",
                                              max_retries=0)
            messages = [{"role": "user", "content": "hello " * 40}]
            async with client.messages.stream(model="claude-whatever", max_tokens=64,
                                              messages=messages) as stream:
                text = await stream.get_final_text()
            raw = await client.messages.with_raw_response.create(
                model="claude-haiku-4-5", max_tokens=8, messages=messages)
            counted = await client.messages.count_tokens(model="m", messages=messages)
            with pytest.raises(anthropic.NotFoundError):
                await client.models.retrieve("x")
            await client.close()
            return proxy.calls, text, raw.headers.get("request-id"), counted.input_tokens

    calls, text, request_id, counted = asyncio.run(exchange())
    assert text.strip().startswith("1 2 3")  # the body reached the SDK intact
    streamed, whole, count, missing = calls
    assert (streamed.endpoint, streamed.streaming, streamed.model) == (
        "/v1/messages", True, "claude-whatever")
    assert streamed.is_model_call and streamed.status == 200
    assert streamed.ttfb_ms is not None and streamed.ttft_ms is not None
    assert streamed.total_ms is not None
    assert 5 <= streamed.ttfb_ms <= streamed.ttft_ms <= streamed.total_ms
    assert streamed.ttft_ms >= 20 and streamed.output_tokens == 10
    assert streamed.input_tokens == 60 and streamed.request_id
    assert whole.streaming is False and whole.request_id == request_id
    assert whole.output_tokens == 8 and whole.ttft_ms == whole.total_ms
    assert (count.endpoint, count.is_model_call, count.status) == (
        "/v1/messages/count_tokens", False, 200) and counted == 60
    assert missing.status == 404 and missing.error_type == "http_404"
    assert all(c.request_bytes > 0 for c in (streamed, whole, count))


def test_unreachable_upstream_is_a_502_and_recorded() -> None:
    async def exchange() -> tuple[list[ProxiedCall], int]:
        async with RecordingProxy("http://127.0.0.1:9") as proxy:
            client = anthropic.AsyncAnthropic(base_url=proxy.base_url, api_key="d",
                                              max_retries=0)
            with pytest.raises(anthropic.APIStatusError) as caught:
                await client.messages.create(model="m", max_tokens=1,
                                             messages=[{"role": "user", "content": "x"}])
            await client.close()
            return proxy.calls, caught.value.status_code

    calls, status = asyncio.run(exchange())
    assert status == 502 and calls[0].error_type is not None


def test_endpoint_templates() -> None:
    assert endpoint_template("/v1/messages") == "/v1/messages"
    assert endpoint_template("/model/anthropic.claude-x:0/invoke") == "/model/{modelId}/invoke"
    assert endpoint_template("/v1/files/file_abc123") == "/v1/files/{file_id}"


@pytest.mark.parametrize("capture", [True, False])
def test_request_bodies_are_kept_only_when_asked_and_masked(emulator: RunningEmulator,
                                                            capture: bool) -> None:
    key = "sk-ant-api03-" + "y" * 24

    async def exchange() -> list[ProxiedCall]:
        async with RecordingProxy(emulator.base_url, capture_bodies=capture) as proxy:
            client = anthropic.AsyncAnthropic(base_url=proxy.base_url, api_key="dummy",
                                              max_retries=0)
            await client.messages.create(model="claude-haiku-4-5", max_tokens=8,
                                         system="be brief",
                                         messages=[{"role": "user", "content": f"key {key}"}])
            await client.close()
            return proxy.calls

    (call,) = asyncio.run(exchange())
    if not capture:
        assert call.body is None
        return
    assert call.body is not None and key not in call.body
    body = json.loads(call.body)
    assert body["messages"] == [{"role": "user", "content": "key [REDACTED]"}]
    assert (body["model"], body["max_tokens"], body["system"]) == ("claude-haiku-4-5", 8,
                                                                     "be brief")
