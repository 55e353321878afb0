"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint (``provider=openai_compat``).

vLLM, SGLang, llama.cpp's server, Ollama, LiteLLM gateways and OpenAI itself: a base URL
(ending before ``/v1``), a bearer key from the environment variable named by
``provider.api_key_env``, streamed with ``stream_options: {"include_usage": true}`` so the
server reports token counts in a last chunk (wire-formats §5).

Timing, on the injected httpx client, each chunk stamped the moment its bytes arrive:
``ttft_ms`` is the first delta with non-empty ``content`` (or ``tool_calls``);
``ttft_reasoning_ms`` the first delta with reasoning text (``reasoning_content`` as llama.cpp
and vLLM send it, ``reasoning`` as Ollama does), its own column. A server that sends no usage
chunk (llama.cpp's server, an interrupted stream) gets its output tokens counted here, one per
content or reasoning delta, and the row says so: ``usage_source = 'client'``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from latlab.providers.clients import http_client_for
from latlab.providers.failures import error_type_for_status
from latlab.providers.http import (
    ConnectionTiming,
    EncodedBodies,
    finish_measurement,
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
from latlab.runner.core.timing import StreamClock, ms_between, now_ns, output_tps

REASONING_KEYS = ("reasoning_content", "reasoning")


def chat_messages(spec: RequestSpec) -> list[dict[str, Any]]:
    """The spec's messages, the system prompt first as a ``system`` message (text only)."""
    messages: list[dict[str, Any]] = []
    if spec.system is not None:
        system = spec.system if isinstance(spec.system, str) else "".join(
            str(block.get("text", "")) for block in spec.system)
        messages.append({"role": "system", "content": system})
    return messages + [dict(m) for m in spec.messages]


def chat_body(spec: RequestSpec) -> dict[str, Any]:
    """The chat completions body: usage requested on streams."""
    body: dict[str, Any] = {"model": spec.model_id, "messages": chat_messages(spec),
                            "max_tokens": spec.max_tokens, "stream": spec.stream}
    if spec.stream:
        body["stream_options"] = {"include_usage": True}
    body.update(spec.extra_body)
    return body


def apply_openai_usage(m: Measurement, usage: Mapping[str, Any] | None) -> None:
    """``prompt_tokens``/``completion_tokens`` (+ cached prompt tokens) from a usage object."""
    if not isinstance(usage, Mapping):
        return
    if usage.get("prompt_tokens") is not None:
        m.input_tokens = int(usage["prompt_tokens"])
    if usage.get("completion_tokens") is not None:
        m.output_tokens = int(usage["completion_tokens"])
        m.usage_source = "api"
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached:
        m.cache_read_tokens = int(cached)


def record_openai_error(m: Measurement, status: int, body: bytes) -> None:
    """Error fields from a non-2xx response and its ``{"error": {…}}`` envelope."""
    m.error_type = error_type_for_status(status)
    if status == 503:
        m.error_type = "overloaded"
    try:
        error = json.loads(body).get("error") or {}
        m.error_message = clip(f"{status} {error.get('type')}: {error.get('message')}")
    except (ValueError, AttributeError):
        m.error_message = f"HTTP {status}: {body[:200]!r}"


CONTENT_DELTA = b'"delta":{"content":"'


def plain_content_delta(data: bytes) -> bool:
    """Whether a chunk's only effect is one content token: one choice, its delta non-empty
    ``content`` alone; no usage, finish reason, reasoning, tool call or error. Read from the
    bytes (a key in quotes cannot occur unescaped inside a JSON string), so most chunks skip
    ``json.loads``; anything else, spaced JSON included, is parsed."""
    at = data.find(CONTENT_DELTA) + len(CONTENT_DELTA)
    usage = data.find(b'"usage":') + len(b'"usage":')
    return (at >= len(CONTENT_DELTA) and data[at:at + 1] not in (b'"', b"")
            and data.startswith(b"{") and data.endswith(b"}")
            and (usage < len(b'"usage":') or data[usage:usage + 4] == b"null")
            and data.count(b'"delta":') == 1 and b'"finish_reason":"' not in data
            and b'"reasoning' not in data and b'"tool_calls"' not in data
            and b'"error"' not in data)


@dataclass
class ChatStream:
    """Interprets chat completion chunks into a clock and a measurement."""

    clock: StreamClock
    measurement: Measurement
    decoder: SseDecoder = field(default_factory=SseDecoder)
    t_first_reasoning: int | None = None
    deltas: int = 0
    finished: bool = False
    template: tuple[bytes, bytes] = (b"", b"")  # a plain chunk's bytes around its content

    def feed(self, chunk: bytes, arrival_ns: int) -> None:
        data = self.decoder.only_data(chunk)
        if data is not None:
            self.event(data, arrival_ns)
            return
        for event in self.decoder.feed(chunk):
            self.event(event.data, arrival_ns)

    def event(self, data: bytes, arrival_ns: int) -> None:
        if self.plain(data):  # what json.loads + handle would conclude
            self.deltas += 1
            self.clock.token(arrival_ns)
        elif data.startswith(b"[DONE]"):
            self.finished = True
        elif data:
            self.handle(json.loads(data), arrival_ns)

    def plain(self, data: bytes) -> bool:
        """``plain_content_delta``, most chunks decided by the stream's first plain one: the
        same bytes around a content string without quotes or escapes are the same chunk."""
        head, tail = self.template
        text = data[len(head):len(data) - len(tail)]
        if (head and data.startswith(head) and data.endswith(tail) and len(text) > 1
                and text.find(b'"') == len(text) - 1 and b"\\" not in text):
            return True
        if not plain_content_delta(data):
            return False
        start = data.find(CONTENT_DELTA) + len(CONTENT_DELTA)
        end = data.find(b'"', start)
        if b"\\" not in data[start:end]:
            self.template = data[:start], data[end + 1:]
        return True

    def handle(self, data: Mapping[str, Any], arrival_ns: int) -> None:
        if data.get("error"):
            error = data["error"] if isinstance(data["error"], Mapping) else {}
            self.measurement.error_type = "stream_error"
            self.measurement.error_message = clip(f"{error.get('type')}: {error.get('message')}")
            self.finished = True
            return
        apply_openai_usage(self.measurement, data.get("usage"))
        for choice in data.get("choices") or []:
            self.choice(choice, arrival_ns)

    def choice(self, choice: Mapping[str, Any], arrival_ns: int) -> None:
        delta = choice.get("delta") or {}
        if delta.get(REASONING_KEYS[0]) or delta.get(REASONING_KEYS[1]):
            self.deltas += 1
            if self.t_first_reasoning is None:
                self.t_first_reasoning = arrival_ns
        if delta.get("content") or delta.get("tool_calls"):
            self.deltas += 1
            self.clock.token(arrival_ns)
        if choice.get("finish_reason"):
            self.measurement.stop_reason = str(choice["finish_reason"])

    def close(self) -> None:
        """The stream ended: client-side counts if no usage came; flag a missing [DONE]."""
        m = self.measurement
        m.ttft_reasoning_ms = ms_between(self.clock.t_start, self.t_first_reasoning)
        if m.usage_source is None and self.deltas:
            m.output_tokens, m.usage_source = self.deltas, "client"
        if not self.finished and m.error_type is None:
            m.error_type = "truncated"
            m.error_message = "stream ended without data: [DONE]"


def finish_chat(m: Measurement, clock: StreamClock, conn: ConnectionTiming) -> None:
    """The common phases; decode speed over content deltas when reasoning came first."""
    finish_measurement(m, clock, conn)
    if m.ttft_reasoning_ms is not None:
        m.output_tps = output_tps(len(clock.token_arrivals), m.generation_ms)


def read_completion(body: Mapping[str, Any], clock: StreamClock, m: Measurement) -> None:
    """A non-streamed completion: every token arrives with the whole body."""
    apply_openai_usage(m, body.get("usage"))
    choices = body.get("choices") or [{}]
    m.stop_reason = choices[0].get("finish_reason")
    clock.t_first_token = clock.t_last_token = clock.t_done


class OpenAICompatProvider:
    """Times chat completions on an injected ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, api_key: str,
                 transport: str = "aiohttp") -> None:
        self.client = client
        self.url = httpx.URL(chat_url(base_url))  # parsed once, not per request
        self.headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
        self.transport = transport
        self.body = EncodedBodies(chat_body)

    async def send(self, spec: RequestSpec) -> Measurement:
        return await timed_exchange(partial(self._exchange, spec), spec.timeout_s, finish_chat)

    async def _exchange(self, spec: RequestSpec, clock: StreamClock, m: Measurement,
                        conn: ConnectionTiming) -> None:
        extensions = {"trace": httpcore_trace(conn)} if self.transport == "httpcore" else {}
        clock.t_start = now_ns()
        async with open_stream(self.client, "POST", self.url, content=self.body(spec),
                               headers=self.headers, extensions=extensions) as response:
            clock.headers()
            m.status = response.status_code
            m.request_id = response.headers.get("x-request-id")
            read_ratelimit_headers(m, response.headers)
            if response.status_code != 200:
                record_openai_error(m, response.status_code, await response.aread())
                return
            if not spec.stream:
                body = await response.aread()
                clock.done()
                read_completion(json.loads(body), clock, m)
                return
            await read_stream(response, ChatStream(clock, m), clock)

    async def aclose(self) -> None:
        await self.client.aclose()


def chat_url(base_url: str) -> str:
    """``{base}/v1/chat/completions``; a base that already ends in ``/v1`` is kept as is."""
    base = base_url.rstrip("/")
    return (base if base.endswith("/v1") else base + "/v1") + "/chat/completions"


def build(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    """The chat-completions provider for ``cfg`` (``client: httpx``)."""
    return OpenAICompatProvider(http_client_for(cfg), endpoint.base_url, endpoint.api_key or "",
                                str(cfg.get("transport", "aiohttp")))
