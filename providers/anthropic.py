"""The Anthropic Messages API over httpx (``provider=anthropic`` and ``provider=emulator``).

Streaming responses are timed per chunk: each chunk is stamped the moment its
bytes arrive, then decoded (SSE) and interpreted (Anthropic events). The event
interpretation (``AnthropicStream``) is shared with other providers that carry
Anthropic events (Vertex).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from latlab.providers.capture import current_capture
from latlab.providers.clients import http_client_for
from latlab.providers.failures import error_type_for_status
from latlab.providers.http import (
    ConnectionTiming,
    StreamResponse,
    httpcore_trace,
    open_stream,
    read_stream,
    timed_exchange,
)
from latlab.providers.ratelimits import read_ratelimit_headers
from latlab.providers.sse import SseDecoder
from latlab.runner.core.protocol import Endpoint, Provider, RequestSpec
from latlab.runner.core.records import Measurement
from latlab.runner.core.secrets import clip
from latlab.runner.core.timing import StreamClock, now_ns

ANTHROPIC_VERSION = "2023-06-01"


@dataclass
class AnthropicStream:
    """Interprets Anthropic stream events into a clock and a measurement."""

    clock: StreamClock
    measurement: Measurement
    decoder: SseDecoder = field(default_factory=SseDecoder)
    finished: bool = False

    def feed(self, chunk: bytes, arrival_ns: int) -> None:
        capture = current_capture.get()
        if capture is not None:
            capture.response_bytes += len(chunk)
        for event in self.decoder.feed(chunk):
            self.handle(event.event, json.loads(event.data), arrival_ns)

    def handle(self, name: str, data: dict[str, Any], arrival_ns: int) -> None:
        capture = current_capture.get()
        if capture is not None:  # an agent loop wants the content (providers/capture.py)
            capture.event(name, data)
        if name == "content_block_delta":
            self.clock.token(arrival_ns)
        elif name == "message_start":
            apply_usage(self.measurement, data["message"].get("usage") or {})
        elif name == "message_delta":
            apply_usage(self.measurement, data.get("usage") or {})
            self.measurement.stop_reason = (data.get("delta") or {}).get("stop_reason")
        elif name == "message_stop":
            self.finished = True
        elif name == "error":
            error = data.get("error") or {}
            self.measurement.error_type = "stream_error"
            self.measurement.error_message = f"{error.get('type')}: {error.get('message')}"
            self.finished = True

    def close(self) -> None:
        """The stream ended: flag it if the terminal event never came."""
        if not self.finished and self.measurement.error_type is None:
            self.measurement.error_type = "truncated"
            self.measurement.error_message = "stream ended without message_stop"


USAGE_COLUMNS = {  # Anthropic usage counter -> the column (and attribute) that keeps it
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_write_tokens",
}


def apply_usage(target: Any, usage: Mapping[str, Any] | Any) -> None:
    """Take the (cumulative) usage counters present in ``usage`` (the wire's JSON object or
    an SDK's usage object) onto ``target``'s columns; later values win."""
    for wire, column in USAGE_COLUMNS.items():
        value = usage.get(wire) if isinstance(usage, Mapping) else getattr(usage, wire, None)
        if value is not None:
            setattr(target, column, int(value))


def messages_body(spec: RequestSpec) -> dict[str, Any]:
    """The Messages API body for ``spec`` (model included)."""
    body: dict[str, Any] = {
        "model": spec.model_id,
        "max_tokens": spec.max_tokens,
        "messages": spec.messages,
        "stream": spec.stream,
    }
    if spec.system is not None:
        body["system"] = spec.system
    body.update(spec.extra_body)
    return body


def record_http_error(m: Measurement, status: int, body: bytes) -> None:
    """Fill the error fields from a non-2xx response and its JSON envelope (Anthropic's, or
    Google's ``[{"error": {"code", "message", "status"}}]`` on Vertex)."""
    m.error_type = error_type_for_status(status)
    try:
        envelope = json.loads(body)
        if isinstance(envelope, list) and envelope:  # Google's front end (Vertex quota)
            envelope = envelope[0]
        error = envelope.get("error") or {}
        kind = error.get("type") or error.get("status")  # Google: status RESOURCE_EXHAUSTED
        m.error_message = clip(f"{status} {kind}: {error.get('message')}")
        m.request_id = m.request_id or envelope.get("request_id")
    except (ValueError, AttributeError):
        m.error_message = f"HTTP {status}: {body[:200]!r}"


class AnthropicProvider:
    """Times Messages API requests on an injected ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, api_key: str,
                 transport: str = "aiohttp") -> None:
        self.client = client
        self.url = httpx.URL(base_url.rstrip("/") + "/v1/messages")  # parsed once
        self.headers = {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION,
                        "content-type": "application/json"}
        self.transport = transport

    async def send(self, spec: RequestSpec) -> Measurement:
        return await timed_exchange(partial(self._exchange, spec), spec.timeout_s)

    def url_for(self, spec: RequestSpec) -> str | httpx.URL:
        """Where ``spec`` is sent (Vertex puts the model and operation in the path)."""
        return self.url

    def body_for(self, spec: RequestSpec) -> dict[str, Any]:
        return messages_body(spec)

    def request_headers(self) -> dict[str, str]:
        """Headers of the next request (Vertex's bearer token can change during a run)."""
        return self.headers

    async def _exchange(self, spec: RequestSpec, clock: StreamClock, m: Measurement,
                        conn: ConnectionTiming) -> None:
        extensions = {"trace": httpcore_trace(conn)} if self.transport == "httpcore" else {}
        clock.t_start = now_ns()
        headers = self.request_headers()
        async with open_stream(self.client, "POST", self.url_for(spec), json=self.body_for(spec),
                               headers=headers, extensions=extensions) as response:
            clock.headers()
            m.status = response.status_code
            m.request_id = response.headers.get("request-id")
            read_ratelimit_headers(m, response.headers)
            if response.status_code != 200:
                record_http_error(m, response.status_code, await response.aread())
                return
            await self._read_body(response, spec.stream, clock, m)

    async def _read_body(self, response: StreamResponse, stream: bool, clock: StreamClock,
                         m: Measurement) -> None:
        if not stream:
            body = await response.aread()
            clock.done()
            read_message(json.loads(body), clock, m)
            return
        await read_stream(response, AnthropicStream(clock, m), clock)

    async def aclose(self) -> None:
        await self.client.aclose()


def read_message(message: dict[str, Any], clock: StreamClock, m: Measurement) -> None:
    """A non-streamed message: the first token arrives with the whole body."""
    capture = current_capture.get()
    if capture is not None:
        capture.message(message)
    apply_usage(m, message.get("usage") or {})
    m.stop_reason = message.get("stop_reason")
    m.text = "".join(str(b.get("text", "")) for b in message.get("content") or []
                     if isinstance(b, dict) and b.get("type") == "text")
    clock.t_first_token = clock.t_last_token = clock.t_done


def build(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    """The Messages API provider for ``cfg`` (``client: httpx``)."""
    return AnthropicProvider(http_client_for(cfg), endpoint.base_url, endpoint.api_key or "",
                             str(cfg.get("transport", "aiohttp")))
