"""A recording reverse proxy on loopback: an agent's API calls pass through it and are timed.

Claude Code (or any client) is pointed at the proxy (``ANTHROPIC_BASE_URL``); the proxy
forwards each request to the upstream (the real API or the emulator), streams the response
back chunk by chunk as it arrives, and records one ``ProxiedCall`` per exchange: method,
endpoint template, host, status, model, streaming, TTFB, TTFT (first content delta), total,
bytes, tokens and request id. Time is measured at the proxy (from the request received to
the last byte written back), so it is what the agent waited minus the loopback hop.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import unquote, urlparse

import aiohttp
from aiohttp import web
from botocore.eventstream import EventStreamBuffer

from latlab.providers.anthropic import apply_usage
from latlab.providers.sse import SseDecoder
from latlab.runner.core.bodies import body_json
from latlab.runner.core.timing import StreamClock, now_ns

HOOK_PATH = "/_latlab/hook"  # Claude Code http hooks post their events here (latlab proxy)
# (url, body, headers) -> (url, headers with the upstream's auth): e.g. SigV4 for Bedrock
Signer = Callable[[str, bytes, dict[str, str]], tuple[str, dict[str, str]]]

HOP_HEADERS = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailers", "transfer-encoding", "upgrade", "host",
                         "content-length", "content-encoding"})
_ID = re.compile(r"/(msg|req|toolu|batch|file)_[A-Za-z0-9]+")


def endpoint_template(path: str) -> str:
    """The path with ids and Bedrock model ids replaced by placeholders (no query)."""
    path = re.sub(r"^/model/[^/]+/", "/model/{modelId}/", path)
    return _ID.sub(lambda m: f"/{{{m.group(1)}_id}}", path)


@dataclass
class ProxiedCall:
    """One request that went through the proxy."""

    method: str
    endpoint: str
    host: str
    started_at: datetime
    clock: StreamClock  # the phases as every provider times them (runner/core/timing.py)
    model: str | None = None
    streaming: bool = False
    status: int | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    stop_reason: str | None = None
    request_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    tool_count: int = 0
    client_session: str | None = None  # Claude Code's X-Claude-Code-Session-Id header
    body: str | None = None  # capture_bodies: the request (core/bodies.py), secrets masked
    decoder: SseDecoder = field(default_factory=SseDecoder, repr=False)
    frames: EventStreamBuffer | None = field(default=None, repr=False)  # Bedrock streams

    @property
    def is_model_call(self) -> bool:
        return self.method == "POST" and (self.endpoint == "/v1/messages"
                                          or self.endpoint.startswith("/model/"))

    @property
    def t0_ns(self) -> int:
        return self.clock.t_start

    @property
    def ttfb_ms(self) -> float | None:
        return self.clock.ttfb_ms()

    @property
    def ttft_ms(self) -> float | None:
        """First content delta; a whole (non-streamed) answer: its last byte."""
        return self.clock.ttft_ms()

    @property
    def total_ms(self) -> float | None:
        return self.clock.total_ms()

    def finish(self) -> None:
        """The exchange ended (last byte written back, or the upstream failed)."""
        self.clock.done()
        if not self.streaming and self.is_model_call and self.status == 200:
            self.clock.token(self.clock.t_done or now_ns())

    def read_request(self, body: bytes, keep: bool = False) -> None:
        self.request_bytes = len(body)
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return
        if isinstance(data, dict):
            self.model = data.get("model") if isinstance(data.get("model"), str) else None
            self.streaming = bool(data.get("stream", False))
            self.tool_count = len(data.get("tools") or [])
            self.body = body_json(data) if keep else None

    def read_bedrock_path(self, path: str) -> None:
        """Bedrock: the model id is in the path; ``…-stream`` operations stream event frames."""
        if path.startswith("/model/"):
            self.model = unquote(path.split("/")[2])
            self.streaming = path.endswith("-stream")
            if self.streaming:
                self.frames = EventStreamBuffer()

    def feed(self, chunk: bytes, now_ns: int) -> None:
        """Stream bytes as they pass: stamp the first content delta, keep usage."""
        self.response_bytes += len(chunk)
        if not self.streaming:
            return
        if self.frames is not None:
            self._feed_frames(chunk, now_ns)
            return
        for event in self.decoder.feed(chunk):
            self._event(event.event, event.data, now_ns)

    def _feed_frames(self, chunk: bytes, now_ns: int) -> None:
        """AWS event-stream frames; ``chunk`` events carry Anthropic events (base64)."""
        assert self.frames is not None
        self.frames.add_data(chunk)
        for message in self.frames:
            headers = cast(dict[str, Any], message.headers)  # botocore-stubs say int
            if headers.get(":message-type") == "exception":
                self.error_type = str(headers.get(":exception-type"))
            elif headers.get(":event-type") == "chunk":
                inner = base64.b64decode(json.loads(message.payload)["bytes"])
                event = json.loads(inner)
                self._event(str(event.get("type")), inner.decode(), now_ns)

    def _event(self, name: str, data_text: str | bytes, now_ns: int) -> None:
        if name == "content_block_delta" and self.clock.t_first_token is None:
            self.clock.token(now_ns)
        if name in ("message_start", "message_delta", "error"):
            try:
                data = json.loads(data_text)
            except ValueError:
                return
            if name == "error":
                self.error_type = "stream_error"
                self.error_message = str((data.get("error") or {}).get("message"))
                return
            usage = (data.get("message") or data).get("usage") or {}
            apply_usage(self, usage)
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason

    def read_whole(self, body: bytes) -> None:
        """A non-streamed JSON body: usage and stop reason."""
        try:
            data = json.loads(body)
        except ValueError:
            return
        if isinstance(data, dict):
            apply_usage(self, data.get("usage") or {})
            self.stop_reason = data.get("stop_reason")
            if self.status and self.status >= 400:
                self.error_message = str((data.get("error") or {}).get("message"))[:300]


class RecordingProxy:
    """``async with RecordingProxy(upstream) as proxy:`` → ``proxy.base_url``, ``proxy.calls``."""

    def __init__(self, upstream: str, host: str = "127.0.0.1", signer: Signer | None = None,
                 port: int = 0, on_call: Callable[[ProxiedCall], None] | None = None,
                 on_hook: Callable[[dict[str, Any]], None] | None = None,
                 capture_bodies: bool = False) -> None:
        self.upstream, self.host, self.signer = upstream.rstrip("/"), host, signer
        self.capture_bodies = capture_bodies
        self.port, self.on_call, self.on_hook = port, on_call, on_hook
        self.calls: list[ProxiedCall] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RecordingProxy:
        self._client = aiohttp.ClientSession(auto_decompress=False,
                                             timeout=aiohttp.ClientTimeout(total=None))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.base_url = f"http://{self.host}:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == HOOK_PATH and self.on_hook is not None:
            return await self._hook(request)
        call = ProxiedCall(request.method, endpoint_template(request.path),
                           urlparse(self.upstream).netloc, datetime.now(UTC), StreamClock())
        self.calls.append(call)
        body = await request.read()
        call.read_request(body, self.capture_bodies)
        call.read_bedrock_path(request.path)
        call.client_session = request.headers.get("x-claude-code-session-id")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        try:
            return await self._forward(request, call, body, headers)
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            call.error_type, call.error_message = type(exc).__name__, str(exc)[:300]
            call.finish()
            return web.json_response(
                {"type": "error", "error": {"type": "api_error",
                                            "message": f"latlab proxy: upstream: {exc}"}},
                status=502)
        finally:
            if self.on_call is not None:
                self.on_call(call)

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        """A Claude Code ``http`` hook's event (not forwarded): handed to ``on_hook``."""
        assert self.on_hook is not None
        try:
            event = await request.json()
        except ValueError:
            return web.json_response({}, status=400)
        if isinstance(event, dict):
            self.on_hook(event)
        return web.json_response({})

    async def _forward(self, request: web.Request, call: ProxiedCall, body: bytes,
                       headers: dict[str, str]) -> web.StreamResponse:
        assert self._client is not None
        url = self.upstream + request.rel_url.raw_path_qs
        if self.signer is not None:  # the client skipped auth; sign for the upstream here
            headers = {k: v for k, v in headers.items()
                       if k.lower() != "authorization" and not k.lower().startswith("x-amz-")}
            url, headers = self.signer(url, body, headers)
        async with self._client.request(request.method, url, data=body, headers=headers,
                                        allow_redirects=False) as upstream:
            call.clock.headers()
            call.status = upstream.status
            call.request_id = upstream.headers.get("request-id") or upstream.headers.get(
                "x-amzn-requestid")
            if upstream.status >= 400:
                call.error_type = f"http_{upstream.status}"
            out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_HEADERS:
                    out.headers[key] = value
            await out.prepare(request)
            whole = bytearray()
            async for chunk in upstream.content.iter_any():
                call.feed(chunk, now_ns())
                if not call.streaming:
                    whole += chunk
                await out.write(chunk)
            await out.write_eof()
        if not call.streaming:
            call.read_whole(bytes(whole))
        call.finish()
        return out
