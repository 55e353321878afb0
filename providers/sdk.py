"""The official SDKs as measured clients (``provider.client: sdk``).

What an application that calls the model through the SDK sees: the ``anthropic`` SDK
(``AsyncAnthropic``, ``AsyncAnthropicBedrock``, ``AsyncAnthropicVertex``) or the ``openai``
SDK (``AsyncOpenAI``), each with its own HTTP client and defaults, retries off (latlab retries,
``workload.retries``). Each stream event is stamped the moment the SDK yields it, so the
SDK's parsing and object building are inside every phase: compare a cell measured with
``client: httpx`` (bytes stamped on arrival) to see what the SDK adds.

Phases as in runner/core/timing.py, with two differences: ``ttfb_ms`` is when the SDK hands back
the stream (after the response headers), and connection phases (``connect_ms``) are not
observed (NULL). Non-streamed calls return the parsed message only: ``ttfb_ms`` is NULL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from latlab.providers.anthropic import apply_usage
from latlab.providers.bedrock import check_options
from latlab.providers.bedrock import region_of as bedrock_region
from latlab.providers.clients import quiet_sdk_logs, sdk_missing
from latlab.providers.failures import classify_failure, describe, error_type_for_status
from latlab.providers.http import ConnectionTiming, finish_measurement
from latlab.providers.openai_compat import REASONING_KEYS, chat_messages, chat_url, finish_chat
from latlab.providers.ratelimits import read_ratelimit_headers
from latlab.providers.vertex import VertexAuth
from latlab.providers.vertex import region_of as vertex_region
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.protocol import Endpoint, Provider, RequestSpec
from latlab.runner.core.records import Measurement
from latlab.runner.core.timing import StreamClock, ms_between, now_ns

STATUS_OVERRIDES = {503: "overloaded"}  # Bedrock's ServiceUnavailable, OpenAI's overload


def record_sdk_error(m: Measurement, exc: BaseException, headers_seen: bool) -> None:
    """Error fields from an SDK exception (status errors, in-stream errors, transport)."""
    status = getattr(exc, "status_code", None)
    if "Timeout" in type(exc).__name__:
        m.error_type = "timeout"
    elif status == 200 or (status is None and type(exc).__name__ == "APIError"):
        m.error_type = "stream_error"  # an error event inside a 200 stream
    elif isinstance(status, int):
        m.status = status
        m.error_type = STATUS_OVERRIDES.get(status) or error_type_for_status(status)
    else:
        m.error_type = classify_failure(exc, m.status, headers_seen)
    m.error_message = describe(exc)
    m.request_id = m.request_id or getattr(exc, "request_id", None)
    response = getattr(exc, "response", None)  # the SDKs' status errors keep the response
    if response is not None and hasattr(response, "headers"):
        read_ratelimit_headers(m, response.headers)


class SdkProvider:
    """Shared send loop: timeout, error capture, phase derivation."""

    client: Any

    async def send(self, spec: RequestSpec) -> Measurement:
        m, clock = Measurement(), StreamClock()
        try:
            async with asyncio.timeout(spec.timeout_s):
                await self._exchange(spec, clock, m)
        except Exception as exc:  # noqa: BLE001 - inside a sweep every failure is a row
            record_sdk_error(m, exc, clock.t_headers is not None)
        if clock.t_done is None:
            clock.done()
        self._finish(m, clock)
        return m

    def _finish(self, m: Measurement, clock: StreamClock) -> None:
        finish_measurement(m, clock, ConnectionTiming())

    async def _exchange(self, spec: RequestSpec, clock: StreamClock, m: Measurement) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.client.close()


class AnthropicSdkProvider(SdkProvider):
    """``client.messages.create`` on an ``AsyncAnthropic``/``…Bedrock``/``…Vertex`` client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def _exchange(self, spec: RequestSpec, clock: StreamClock, m: Measurement) -> None:
        kwargs: dict[str, Any] = {"model": spec.model_id, "max_tokens": spec.max_tokens,
                                  "messages": spec.messages}
        if spec.system is not None:
            kwargs["system"] = spec.system
        if spec.extra_body:
            kwargs["extra_body"] = dict(spec.extra_body)
        clock.t_start = now_ns()
        if not spec.stream:
            message = await self.client.messages.create(**kwargs)
            clock.done()
            m.status, m.request_id = 200, getattr(message, "_request_id", None)
            apply_usage(m, message.usage)
            m.stop_reason = message.stop_reason
            clock.t_first_token = clock.t_last_token = clock.t_done
            return
        stream = await self.client.messages.create(**kwargs, stream=True)
        clock.headers()
        m.status = stream.response.status_code
        headers = stream.response.headers  # Bedrock names its id x-amzn-RequestId
        m.request_id = headers.get("request-id") or headers.get("x-amzn-requestid")
        read_ratelimit_headers(m, headers)
        await self._events(stream, clock, m)

    async def _events(self, stream: Any, clock: StreamClock, m: Measurement) -> None:
        finished = False
        async for event in stream:
            kind = event.type
            if kind == "content_block_delta":
                clock.token(now_ns())
            elif kind == "message_start":
                apply_usage(m, event.message.usage)
            elif kind == "message_delta":
                apply_usage(m, event.usage)
                m.stop_reason = event.delta.stop_reason
            elif kind == "message_stop":
                finished = True
                clock.done()
        if not finished:
            m.error_type, m.error_message = "truncated", "stream ended without message_stop"


class OpenAISdkProvider(SdkProvider):
    """``client.chat.completions.create`` on an ``AsyncOpenAI`` client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.t_first_reasoning: int | None = None

    def _finish(self, m: Measurement, clock: StreamClock) -> None:
        finish_chat(m, clock, ConnectionTiming())

    async def _exchange(self, spec: RequestSpec, clock: StreamClock, m: Measurement) -> None:
        kwargs: dict[str, Any] = {"model": spec.model_id, "messages": chat_messages(spec),
                                  "max_tokens": spec.max_tokens}
        if spec.extra_body:
            kwargs["extra_body"] = dict(spec.extra_body)
        clock.t_start = now_ns()
        if not spec.stream:
            completion = await self.client.chat.completions.create(**kwargs)
            clock.done()
            m.status = 200
            self._usage(m, completion.usage)
            m.stop_reason = completion.choices[0].finish_reason if completion.choices else None
            clock.t_first_token = clock.t_last_token = clock.t_done
            return
        stream = await self.client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True})
        clock.headers()
        m.status = stream.response.status_code
        m.request_id = stream.response.headers.get("x-request-id")
        read_ratelimit_headers(m, stream.response.headers)
        await self._chunks(stream, clock, m)

    async def _chunks(self, stream: Any, clock: StreamClock, m: Measurement) -> None:
        first_reasoning: int | None = None
        deltas = 0
        async for chunk in stream:
            arrival = now_ns()
            self._usage(m, chunk.usage)
            for choice in chunk.choices:
                extra: Mapping[str, Any] = choice.delta.model_extra or {}
                if any(extra.get(key) for key in REASONING_KEYS):
                    deltas += 1
                    first_reasoning = first_reasoning or arrival
                if choice.delta.content or choice.delta.tool_calls:
                    deltas += 1
                    clock.token(arrival)
                if choice.finish_reason:
                    m.stop_reason = choice.finish_reason
        clock.done()
        m.ttft_reasoning_ms = ms_between(clock.t_start, first_reasoning)
        if m.usage_source is None and deltas:
            m.output_tokens, m.usage_source = deltas, "client"
        if m.stop_reason is None:
            m.error_type, m.error_message = "truncated", "stream ended without finish_reason"

    @staticmethod
    def _usage(m: Measurement, usage: Any) -> None:
        if usage is None:
            return
        m.input_tokens, m.output_tokens = usage.prompt_tokens, usage.completion_tokens
        m.usage_source = "api"


def _anthropic_sdk() -> Any:
    try:
        import anthropic  # optional: latlab[sdk]
    except ImportError as exc:
        raise sdk_missing("anthropic") from exc
    quiet_sdk_logs()
    return anthropic


def _anthropic(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    return AnthropicSdkProvider(_anthropic_sdk().AsyncAnthropic(
        api_key=endpoint.api_key, base_url=endpoint.base_url, max_retries=0))


def _openai(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    try:
        import openai  # optional: latlab[sdk]
    except ImportError as exc:
        raise sdk_missing("openai") from exc
    quiet_sdk_logs()
    base = chat_url(endpoint.base_url).removesuffix("/chat/completions")
    return OpenAISdkProvider(openai.AsyncOpenAI(
        api_key=endpoint.api_key or "none", base_url=base, max_retries=0))


def _vertex(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    auth: VertexAuth = endpoint.credentials
    return AnthropicSdkProvider(_anthropic_sdk().AsyncAnthropicVertex(  # ADC: the SDK refreshes
        region=vertex_region(cfg), project_id=auth.project,
        access_token=None if auth.adc else endpoint.api_key,
        base_url=endpoint.base_url.rstrip("/") + "/v1", max_retries=0))


def _bedrock(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    """``AsyncAnthropicBedrock`` (InvokeModel[WithResponseStream] only) with SigV4 credentials."""
    check_options(cfg)
    if str(cfg.get("api", "invoke_stream")).startswith("converse"):
        raise ConfigError("provider.client: sdk speaks InvokeModel only; use provider.api=invoke "
                          "or invoke_stream (or client=httpx/boto3 for Converse)")
    if endpoint.credentials is None:
        raise ConfigError("provider.client: sdk needs AWS SigV4 credentials, not a Bedrock "
                          "API key; use client=httpx or boto3")
    frozen = endpoint.credentials.get_frozen_credentials()
    return AnthropicSdkProvider(_anthropic_sdk().AsyncAnthropicBedrock(
        aws_access_key=frozen.access_key, aws_secret_key=frozen.secret_key,
        aws_session_token=frozen.token, aws_region=bedrock_region(cfg),
        base_url=endpoint.base_url, max_retries=0))


BUILDERS = {"anthropic": _anthropic, "openai_compat": _openai, "vertex": _vertex,
            "bedrock": _bedrock}


def build(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    """``provider.client: sdk``: the official SDK of the provider's kind."""
    return BUILDERS[str(cfg["kind"])](cfg, endpoint)
