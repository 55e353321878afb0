"""The emulator's HTTP server: Anthropic Messages API on aiohttp, paced to absolute deadlines.

Every request is planned the moment it is received (``t0``): all latency draws happen then,
and every send is scheduled at ``t0 + offset``, never as an accumulation of relative sleeps.
``sleep_until`` waits for a deadline through the loop's one pacer (runner/core/timing.py: a timerfd
wake-up, no busy-wait by default); the server measures its own lag (actual send − scheduled
send) for every event it writes.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Mapping,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from latlab.providers.emulator import anthropic_wire as wire
from latlab.providers.emulator.capacity import Admission, Capacity
from latlab.providers.emulator.profile import FAULT_KINDS, EmulatorProfile
from latlab.providers.emulator.prompt_cache import PromptCache
from latlab.providers.emulator.replies import reply_tokens
from latlab.runner.core import timing

# Sleep to this far before a deadline, then spin: 0 where the pacer wakes on a timerfd, else
# 1.5 ms to cover asyncio's timer error (runner/core/timing.py default_spin_margin_ns).
SPIN_MARGIN_NS = timing.SPIN_MARGIN_NS
STALL_S = 3600.0  # how long the `stall` fault keeps a request open
FAULT_HEADER = "x-latlab-fault"  # request header forcing a fault kind (or "none")
LISTEN_BACKLOG = 4096  # aiohttp's default 128 drops SYNs when hundreds of streams open at once
FAULT_DELTAS = 3  # content deltas sent before `stream_error` / `truncate` strike
HTTP_FAULTS: dict[str, int] = {"rate_limited": 429, "overloaded": 529, "server_error": 500}
CACHE_LOST_FAULTS = frozenset({*HTTP_FAULTS, "disconnect", "stall"})  # no first token: no write
_REASONS = {529: "Overloaded"}

JSONDict = dict[str, Any]


@dataclass
class Pacing:
    """How this process's emulator waits for a send instant: sleep to ``spin_margin_ns``
    before it, then spin (yield) the rest. A standalone emulator spins only where the pacer has
    no timerfd (margin 1.5 ms; with one, 0) or when asked (``--spin-margin-us``). One
    embedded in the client's process (``start_emulator``: a thread) never does: its spinning
    holds the GIL and starves the client's thread, whose reads then come late and in clumps
    (measured: 6 streams, profile=fast, TTFT median 64 ms instead of 20; without the spin
    23.5 ms)."""

    spin_margin_ns: int = SPIN_MARGIN_NS


PACING = Pacing()


def sleep_until(deadline_ns: int) -> Coroutine[Any, Any, None]:
    """Wait until the absolute ``perf_counter_ns`` instant, paced as ``PACING`` says."""
    return timing.sleep_until(deadline_ns, PACING.spin_margin_ns)


# ---------------------------------------------------------------------------- lag statistics


class LagHistogram:
    """Bounded log-linear histogram of lags: 1 µs buckets below 2 ms, ~0.1 % above."""

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.total_ns = 0
        self.max_ns = 0

    @staticmethod
    def _bucket(us: int) -> int:
        if us < 2048:
            return us
        shift = us.bit_length() - 11
        return 2048 + (shift - 1) * 1024 + ((us >> shift) - 1024)

    @staticmethod
    def _bucket_mid_us(bucket: int) -> float:
        if bucket < 2048:
            return bucket + 0.5
        shift = (bucket - 2048) // 1024 + 1
        mantissa = (bucket - 2048) % 1024 + 1024
        return float((mantissa << shift) + (1 << shift) / 2)

    def record(self, lag_ns: int) -> None:
        lag_ns = max(lag_ns, 0)
        self.buckets[self._bucket(lag_ns // 1000)] += 1
        self.count += 1
        self.total_ns += lag_ns
        self.max_ns = max(self.max_ns, lag_ns)

    def quantile_ms(self, q: float) -> float:
        """Nearest-rank quantile (bucket midpoint, capped at the exact max), in ms."""
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return min(self._bucket_mid_us(bucket) / 1000, self.max_ns / 1e6)
        return self.max_ns / 1e6

    def summary(self) -> JSONDict:
        if not self.count:
            return {"count": 0, "p50": None, "p99": None, "max": None, "mean": None}
        return {
            "count": self.count,
            "p50": round(self.quantile_ms(0.50), 4),
            "p99": round(self.quantile_ms(0.99), 4),
            "max": round(self.max_ns / 1e6, 4),
            "mean": round(self.total_ns / self.count / 1e6, 4),
        }


class ServerStats:
    """Thread-safe counters and send-lag histograms (overall and per event name)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._lag = LagHistogram()
            self._by_event: dict[str, LagHistogram] = {}
            self._requests = 0
            self._active = 0
            self._faults: Counter[str] = Counter()

    def record(self, event: str, lag_ns: int) -> None:
        with self._lock:
            self._lag.record(lag_ns)
            histogram = self._by_event.get(event)
            if histogram is None:
                histogram = self._by_event[event] = LagHistogram()
            histogram.record(lag_ns)

    def request_started(self) -> None:
        with self._lock:
            self._requests += 1
            self._active += 1

    def request_finished(self) -> None:
        with self._lock:
            self._active -= 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def snapshot(self) -> JSONDict:
        """``{requests, active, faults, lag_ms: {count,p50,p99,max,mean}, lag_ms_by_event}``."""
        with self._lock:
            return {
                "requests": self._requests,
                "active": self._active,
                "faults": dict(self._faults),
                "lag_ms": self._lag.summary(),
                "lag_ms_by_event": {k: h.summary() for k, h in sorted(self._by_event.items())},
            }


# ---------------------------------------------------------------------------- request plans


@dataclass(frozen=True)
class RequestPlan:
    """Everything decided at arrival: identity, size, fault and the absolute send times."""

    request_id: str
    message_id: str
    model: str
    stream: bool
    input_tokens: int
    n_tokens: int
    stop_reason: str
    fault: str | None
    t0_ns: int
    ttfb_at: int
    token_at: tuple[int, ...]
    cache: tuple[int, int, int] = (0, 0, 0)  # cache_write, cache_read, cache_write_1h tokens
    queue_ms: float = 0.0  # time waiting for a capacity slot, before ttfb_at's clock started
    texts: tuple[str, ...] | None = None  # a scripted reply's tokens (profile ``replies``)

    def token(self, index: int) -> str:
        return self.texts[index] if self.texts is not None else wire.token_text(index)

    def output_text(self) -> str:
        return "".join(self.token(i) for i in range(self.n_tokens))

    @property
    def deltas_to_send(self) -> int:
        if self.fault in ("stream_error", "truncate"):
            return min(FAULT_DELTAS, self.n_tokens)
        return self.n_tokens

    @property
    def last_sent_at(self) -> int:
        """When the last delta to be sent goes out (TTFB when none is sent)."""
        k = self.deltas_to_send
        return self.token_at[k - 1] if k else self.ttfb_at

    def headers(self) -> dict[str, str]:
        hdrs = {
            "request-id": self.request_id,
            "x-latlab-planned-ttfb-ms": f"{(self.ttfb_at - self.t0_ns) / 1e6:.3f}",
            "x-latlab-planned-ttft-ms": f"{(self.token_at[0] - self.t0_ns) / 1e6:.3f}",
            "x-latlab-planned-total-ms": f"{(self.token_at[-1] - self.t0_ns) / 1e6:.3f}",
        }
        if self.fault:
            hdrs["x-latlab-fault"] = self.fault
        if self.queue_ms:
            hdrs["x-latlab-queue-ms"] = f"{self.queue_ms:.3f}"
        return hdrs


class EmulatorState:
    """Per-server state: the profile, the seeded generator and the statistics."""

    def __init__(self, profile: EmulatorProfile) -> None:
        self.profile = profile
        self.rng = random.Random(profile.seed)
        self.stats = ServerStats()
        self.capacity = Capacity(profile.capacity)
        self.cache = PromptCache(profile.prompt_cache)

    def snapshot(self) -> JSONDict:
        """The statistics plus the capacity pools and the prompt cache."""
        return {**self.stats.snapshot(), "capacity": self.capacity.snapshot(),
                "prompt_cache": self.cache.snapshot()}

    def plan(
        self, body: Mapping[str, Any], t0_ns: int, request_id: str, forced: str | None,
        queue_ns: int = 0,
    ) -> RequestPlan:
        """Draw everything for one request. ``forced``: a fault kind, "none", or None (roll).
        ``queue_ns``: time the request waited for a slot; its clock starts after it.

        Raises KeyError when no model entry matches.
        """
        mp = self.profile.model_profile(str(body["model"]))
        rng = self.rng
        fault = self.profile.faults.draw(rng)
        if forced is not None:
            fault = None if forced == "none" else forced
        ttfb_ms = mp.ttfb_ms.sample(rng)
        start = t0_ns + queue_ns
        cached = self.cache.lookup(str(body["model"]), body, start)
        input_tokens = wire.estimate_input_tokens(body) - cached.read - cached.write
        extra = self.profile.prompt_cache.ttft_extra_ms(input_tokens + cached.write, cached.read)
        ttft_ms = max(mp.ttft_ms.sample(rng) + extra, ttfb_ms)
        max_tokens = int(body["max_tokens"])
        texts = reply_tokens(self.profile.replies, body)
        length = len(texts) if texts is not None else mp.output_tokens
        n = min(max_tokens, length)
        offsets = [ttft_ms]
        for _ in range(n - 1):
            offsets.append(offsets[-1] + mp.itl_ms.sample(rng))
        if fault not in CACHE_LOST_FAULTS:
            self.cache.store(cached, start + round(ttft_ms * 1e6))
        return RequestPlan(
            request_id=request_id,
            message_id=wire.new_message_id(),
            model=str(body["model"]),
            stream=bool(body.get("stream", False)),
            input_tokens=input_tokens,
            n_tokens=n,
            stop_reason="max_tokens" if max_tokens < length else "end_turn",
            fault=fault,
            t0_ns=t0_ns,
            ttfb_at=start + round(ttfb_ms * 1e6),
            token_at=tuple(start + round(off * 1e6) for off in offsets),
            cache=(cached.write, cached.read, cached.write_1h),
            queue_ms=queue_ns / 1e6,
            texts=texts,
        )


STATE_KEY = web.AppKey("latlab_emulator_state", EmulatorState)


# ---------------------------------------------------------------------------- request checks


def error_response(
    status: int, request_id: str, message: str | None = None, headers: Mapping[str, str] = {}
) -> web.Response:
    """An HTTP error with the Anthropic envelope and the ``request-id`` header."""
    body = wire.dumps(wire.error_body(status, request_id, message)).encode()
    return web.Response(
        status=status,
        reason=_REASONS.get(status),
        body=body,
        content_type=wire.JSON_CONTENT_TYPE,
        headers={"request-id": request_id, **headers},
    )


def _authorized(request: web.Request) -> bool:
    """Either ``x-api-key`` or ``Authorization: Bearer …`` (any non-empty value)."""
    if request.headers.get("x-api-key", "").strip():
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _validate_body(body: Any) -> str | None:
    """The error message for an invalid Messages request body, or None if it is fine."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: field required"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return "max_tokens: field required (integer >= 1)"
    if not isinstance(body.get("messages"), list):
        return "messages: field required"
    if not isinstance(body.get("stream", False), bool):
        return "stream: must be a boolean"
    return None


async def read_json_object(request: web.Request, request_id: str) -> JSONDict | web.Response:
    """The request's JSON object body, or the 400 to send (Anthropic's error envelope)."""
    try:
        body = await request.json()
    except ValueError:
        return error_response(400, request_id, "request body is not valid JSON")
    if not isinstance(body, dict):
        return error_response(400, request_id, "request body must be a JSON object")
    return body


async def _read_request(request: web.Request, request_id: str) -> JSONDict | web.Response:
    """Auth, JSON body and validation; returns the body or the error response to send."""
    if not _authorized(request):
        return error_response(401, request_id, "x-api-key header is required")
    body = await read_json_object(request, request_id)
    if isinstance(body, web.Response):
        return body
    problem = _validate_body(body)
    if problem:
        return error_response(400, request_id, problem)
    assert isinstance(body, dict)
    return body


def forced_fault(request: web.Request, extra_kinds: Collection[str] = (),
                 aliases: Mapping[str, str] | None = None) -> str | None:
    """The ``x-latlab-fault`` header as a canonical kind; ValueError for unknown kinds."""
    value = request.headers.get(FAULT_HEADER)
    if value is None:
        return None
    value = value.strip().lower()
    if value != "none" and value not in FAULT_KINDS and value not in extra_kinds:
        raise ValueError(f"unknown fault kind {value!r} in {FAULT_HEADER}")
    return (aliases or {}).get(value, value)


# ---------------------------------------------------------------------------- sending


async def _send_at(
    request: web.Request, resp: web.StreamResponse, at_ns: int, stats: ServerStats
) -> web.StreamResponse:
    """Send a complete (non-streamed) response at ``at_ns`` and record its lag."""
    await sleep_until(at_ns)
    try:
        await resp.prepare(request)
        await resp.write_eof()
    except ConnectionError:
        return resp
    stats.record("response", time.perf_counter_ns() - at_ns)
    return resp


async def _emit(
    resp: web.StreamResponse, stats: ServerStats, name: str, data: JSONDict, at_ns: int
) -> None:
    """Write one SSE event (one chunk, one flush) at ``at_ns`` and record its lag."""
    await sleep_until(at_ns)
    await resp.write(wire.sse_event(name, data))
    stats.record(name, time.perf_counter_ns() - at_ns)


async def _send_headers_at(
    request: web.Request, resp: web.StreamResponse, at_ns: int, stats: ServerStats
) -> None:
    await sleep_until(at_ns)
    await resp.prepare(request)
    stats.record("headers", time.perf_counter_ns() - at_ns)


def _close_connection(request: web.Request) -> None:
    """Close the connection now (pending bytes are flushed first, then FIN)."""
    request.protocol.force_close()


async def _http_fault(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """429 / 529 / 500 with the error envelope, at TTFB."""
    assert plan.fault is not None
    status = HTTP_FAULTS[plan.fault]
    extra = {"retry-after": "1"} if status == 429 else {}
    resp = error_response(status, plan.request_id, headers={**plan.headers(), **extra})
    return await _send_at(request, resp, plan.ttfb_at, stats)


async def _disconnect(request: web.Request, plan: RequestPlan) -> web.StreamResponse:
    """Close the connection at TTFB without sending anything."""
    await sleep_until(plan.ttfb_at)
    _close_connection(request)
    return web.StreamResponse()


async def _stall(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """Headers at TTFB, then nothing for ``STALL_S`` (cancelled when the client leaves)."""
    ctype = wire.SSE_CONTENT_TYPE if plan.stream else wire.JSON_CONTENT_TYPE
    resp = web.StreamResponse(headers={**plan.headers(), "content-type": ctype})
    try:
        await _send_headers_at(request, resp, plan.ttfb_at, stats)
    except ConnectionError:
        return resp
    await asyncio.sleep(STALL_S)
    return resp


async def _stream_body(resp: web.StreamResponse, plan: RequestPlan, stats: ServerStats) -> None:
    """message_start … deltas …, then the proper ending or the planned in-stream fault."""
    at = plan.ttfb_at
    await _emit(
        resp,
        stats,
        "message_start",
        wire.message_start(plan.message_id, plan.model, plan.input_tokens, plan.cache),
        at,
    )
    await _emit(resp, stats, "content_block_start", wire.content_block_start_text(0), at)
    await _emit(resp, stats, "ping", wire.ping(), at)
    for i in range(plan.deltas_to_send):
        delta = wire.text_delta(plan.token(i), 0)
        await _emit(resp, stats, "content_block_delta", delta, plan.token_at[i])
    at = plan.last_sent_at
    if plan.fault == "stream_error":
        await _emit(resp, stats, "error", wire.stream_error_event(529), at)
        return
    if plan.fault == "truncate":
        return
    await _emit(resp, stats, "content_block_stop", wire.content_block_stop(0), at)
    usage_delta = wire.message_delta(plan.stop_reason, plan.input_tokens, plan.n_tokens,
                                     plan.cache)
    await _emit(resp, stats, "message_delta", usage_delta, at)
    await _emit(resp, stats, "message_stop", wire.message_stop(), at)


async def _stream(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """A streamed (SSE) response, each event flushed on its own at its scheduled time."""
    headers = {**plan.headers(), "content-type": wire.SSE_CONTENT_TYPE, "cache-control": "no-cache"}
    resp = web.StreamResponse(status=200, headers=headers)
    resp.enable_chunked_encoding()
    try:
        await _send_headers_at(request, resp, plan.ttfb_at, stats)
        await _stream_body(resp, plan, stats)
        if plan.fault == "truncate":
            _close_connection(request)
        else:
            await resp.write_eof()
    except ConnectionError:
        pass  # the client went away; aiohttp finishes the exchange quietly
    return resp


async def _non_stream(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """The whole JSON message when the last token would have been generated."""
    if plan.fault == "stream_error":  # mid-generation overload surfaces as an HTTP 529
        resp = error_response(529, plan.request_id, headers=plan.headers())
        return await _send_at(request, resp, plan.last_sent_at, stats)
    text = plan.output_text()
    msg = wire.text_message(
        plan.message_id, plan.model, text, plan.stop_reason, plan.input_tokens, plan.n_tokens,
        plan.cache,
    )
    body = wire.dumps(msg).encode()
    if plan.fault != "truncate":
        resp = web.Response(body=body, content_type=wire.JSON_CONTENT_TYPE, headers=plan.headers())
        return await _send_at(request, resp, plan.token_at[-1], stats)
    sresp = web.StreamResponse(headers={**plan.headers(), "content-type": wire.JSON_CONTENT_TYPE})
    sresp.content_length = len(body)
    try:
        await _send_headers_at(request, sresp, plan.last_sent_at, stats)
        await sresp.write(body[: len(body) // 2])
    except ConnectionError:
        return sresp
    _close_connection(request)
    return sresp


# ---------------------------------------------------------------------------- handlers


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def counted(handle: Callable[[web.Request, int], Awaitable[web.StreamResponse]]) -> Handler:
    """The aiohttp handler of a model route: stamps the arrival (the plan's clock starts
    there) and counts the request in the stats while it is served."""

    async def serve(request: web.Request) -> web.StreamResponse:
        t0_ns = time.perf_counter_ns()
        stats = request.app[STATE_KEY].stats
        stats.request_started()
        try:
            return await handle(request, t0_ns)
        finally:
            stats.request_finished()

    return serve


async def handle_messages(request: web.Request, t0: int) -> web.StreamResponse:
    """``POST /v1/messages``."""
    state, request_id = request.app[STATE_KEY], wire.new_request_id()
    body = await _read_request(request, request_id)
    if isinstance(body, web.Response):
        return body
    async with capacity_slot(state, str(body["model"])) as admission:
        return await _admitted(request, state, body, request_id, t0, admission)


@asynccontextmanager
async def capacity_slot(state: EmulatorState, model_id: str) -> AsyncIterator[Admission]:
    """Hold one of the model's capacity slots (profile ``capacity``) for the block; the
    admission says how long the request queued, or which fault rejects it (beyond the queue).
    Every route plans with ``admission.reject or forced_fault(...)`` and ``admission.queue_ns``.
    """
    admission = await state.capacity.admit(model_id)
    try:
        yield admission
    finally:
        admission.release()


async def _admitted(request: web.Request, state: EmulatorState, body: JSONDict,
                    request_id: str, t0: int, admission: Admission) -> web.StreamResponse:
    """Plan and send a request that has a capacity slot (or was rejected beyond the queue)."""
    try:
        forced = admission.reject or forced_fault(request)
        plan = state.plan(body, t0, request_id, forced, admission.queue_ns)
    except ValueError as exc:
        return error_response(400, request_id, str(exc))
    except KeyError:
        return error_response(404, request_id, f"model: {body['model']}")
    result = await send_fault(request, plan, state.stats)
    if result is None and body.get("tools") and (scripted := _scripted(body)) is not None:
        from latlab.providers.emulator.scripts import respond  # agent sessions

        result = await respond(request, plan, scripted, plan.input_tokens)
    if result is None:
        result = await send_messages(request, plan, state.stats)
    assert isinstance(result, web.StreamResponse)
    return result


async def send_fault(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """Count the plan's fault; send it if it replaces the response, else return None."""
    if plan.fault is not None:
        stats.fault(plan.fault)
    if plan.fault in HTTP_FAULTS:
        return await _http_fault(request, plan, stats)
    if plan.fault == "disconnect":
        return await _disconnect(request, plan)
    if plan.fault == "stall":
        return await _stall(request, plan, stats)
    return None


async def send_messages(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """The Messages response, streamed or whole (in-stream faults are the plan's to act on)."""
    if plan.stream:
        return await _stream(request, plan, stats)
    return await _non_stream(request, plan, stats)


def _scripted(body: JSONDict) -> Any:
    """A scripted agent turn when the request is part of a latlab task session, else None."""
    from latlab.providers.emulator.scripts import scripted_reply

    return scripted_reply(body)


async def handle_count_tokens(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/count_tokens``: the same deterministic estimate, at once."""
    request_id = wire.new_request_id()
    if not _authorized(request):
        return error_response(401, request_id, "x-api-key header is required")
    body = await read_json_object(request, request_id)
    if isinstance(body, web.Response):
        return body
    tokens = {"input_tokens": wire.estimate_input_tokens(body)}
    return web.json_response(tokens, headers={"request-id": request_id})


async def handle_stats(request: web.Request) -> web.StreamResponse:
    """``GET /_latlab/stats``: counters and send-lag statistics (ms)."""
    return web.json_response(request.app[STATE_KEY].snapshot())


async def handle_stats_reset(request: web.Request) -> web.StreamResponse:
    """``POST /_latlab/stats/reset``."""
    request.app[STATE_KEY].stats.reset()
    return web.json_response({"ok": True})


async def handle_health(request: web.Request) -> web.StreamResponse:
    """``GET /_latlab/health``: readiness probe."""
    return web.json_response({"ok": True})


async def handle_not_found(request: web.Request) -> web.StreamResponse:
    return error_response(404, wire.new_request_id(), f"{request.method} {request.path} not found")


def build_app(profile: EmulatorProfile) -> web.Application:
    """The aiohttp application for one emulator (its own seeded generator and stats)."""
    app = web.Application()
    app[STATE_KEY] = EmulatorState(profile)
    app.router.add_post("/v1/messages", counted(handle_messages))
    app.router.add_post("/v1/messages/count_tokens", handle_count_tokens)
    app.router.add_get("/_latlab/stats", handle_stats)
    app.router.add_post("/_latlab/stats/reset", handle_stats_reset)
    app.router.add_get("/_latlab/health", handle_health)
    from latlab.providers.emulator.bedrock_routes import add_bedrock_routes  # imports this module

    add_bedrock_routes(app)  # Bedrock Runtime: /model/{modelId}/invoke, converse, …
    from latlab.providers.emulator.openai_routes import add_openai_routes

    add_openai_routes(app)  # OpenAI-compatible: /v1/chat/completions, /v1/models
    from latlab.providers.emulator.vertex_routes import add_vertex_routes

    add_vertex_routes(app)  # Vertex AI: …/publishers/anthropic/models/{model}:[stream]rawPredict
    app.router.add_route("*", "/{tail:.*}", handle_not_found)
    return app


def base_url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Bind and start accepting connections; returns the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(runner.addresses[0][1])
    return runner, base_url_for(host, bound_port)
