"""How the emulator sends: the one rule every route follows, and the Anthropic Messages shape.

A route's handler is wrapped in ``counted`` (the arrival stamps the plan's clock), holds a
``capacity_slot`` while it serves, and draws its plan with ``plan_admitted`` (the capacity's
rejection, else the ``x-latlab-fault`` header, else the profile's fault rate). Every byte then
goes out at its planned instant, and its lag is recorded: ``send_at`` (a whole response),
``send_headers_at`` (a stream's headers), ``write_at`` (one event or frame). ``disconnect``,
``stall`` and ``close_connection`` are the faults that need no body.

Every route draws from the profile's rate limits the same way: ``admit_rate`` on arrival,
``charge_output`` once planned.

The Anthropic Messages request checks and responses (``read_request``, ``error_response``,
``send_fault``, ``send_messages``) are here too: ``/v1/messages`` (anthropic_routes.py) and
Vertex (vertex_routes.py) both speak them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from aiohttp import web

from latlab.providers.emulator import anthropic_wire as wire
from latlab.providers.emulator.capacity import Admission
from latlab.providers.emulator.profile import FAULT_KINDS
from latlab.providers.emulator.ratelimit import Level, Verdict
from latlab.providers.emulator.state import (
    HTTP_FAULTS,
    STATE_KEY,
    EmulatorState,
    JSONDict,
    RequestPlan,
    ServerStats,
    sleep_until,
)

STALL_S = 3600.0  # how long the `stall` fault keeps a request open
FAULT_HEADER = "x-latlab-fault"  # request header forcing a fault kind (or "none")
_REASONS = {529: "Overloaded"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------------------- every route


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


@asynccontextmanager
async def capacity_slot(state: EmulatorState, model_id: str) -> AsyncIterator[Admission]:
    """Hold one of the model's capacity slots (profile ``capacity``) for the block; the
    admission says how long the request queued, or which fault rejects it (beyond the queue).
    Every route plans with ``plan_admitted`` inside the block.
    """
    admission = await state.capacity.admit(model_id)
    try:
        yield admission
    finally:
        admission.release()


def plan_admitted(request: web.Request, body: Mapping[str, Any], t0_ns: int, request_id: str,
                  admission: Admission, extra_kinds: Collection[str] = (),
                  aliases: Mapping[str, str] | None = None) -> RequestPlan:
    """The plan of a request holding a capacity slot: the capacity's rejection, else the
    ``x-latlab-fault`` header (``forced_fault``), else the profile's draw; its clock starts
    after the time it queued.

    Raises ValueError for an unknown fault kind, KeyError when no model entry matches.
    """
    forced = admission.reject or forced_fault(request, extra_kinds, aliases)
    return request.app[STATE_KEY].plan(body, t0_ns, request_id, forced, admission.queue_ns)


def admit_rate(request: web.Request, key: str, input_tokens: int) -> Verdict:
    """The profile's rate limits (ratelimit.py) for an arriving request, before it queues
    for capacity; a refusal counts as a ``rate_limited`` fault. The route sends the 429 in
    its provider's shape."""
    state = request.app[STATE_KEY]
    verdict = state.rate_limits.admit(key, input_tokens)
    if verdict.refused_by is not None:
        state.stats.fault("rate_limited")
    return verdict


def charge_output(request: web.Request, key: str, plan: RequestPlan,
                  render: Callable[[Iterable[Level]], dict[str, str]] | None = None
                  ) -> RequestPlan:
    """Charge the plan's output tokens to ``key``'s buckets; with ``render`` (the route's
    header format), the plan sends the levels after the charge."""
    levels = request.app[STATE_KEY].rate_limits.charge_output(key, plan.n_tokens)
    return plan if render is None else replace(plan, extra_headers=tuple(render(levels).items()))


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


def authorized(request: web.Request) -> bool:
    """Either ``x-api-key`` or ``Authorization: Bearer …`` (any non-empty value)."""
    if request.headers.get("x-api-key", "").strip():
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def validate_body(body: Any) -> str | None:
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


async def read_request(request: web.Request, request_id: str) -> JSONDict | web.Response:
    """Auth, JSON body and validation; returns the body or the error response to send."""
    if not authorized(request):
        return error_response(401, request_id, "x-api-key header is required")
    body = await read_json_object(request, request_id)
    if isinstance(body, web.Response):
        return body
    problem = validate_body(body)
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


async def send_at(
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


async def write_at(resp: web.StreamResponse, stats: ServerStats, name: str, data: bytes,
                   at_ns: int) -> None:
    """Write one event or frame (one chunk, one flush) at ``at_ns`` and record its lag."""
    await sleep_until(at_ns)
    await resp.write(data)
    stats.record(name, time.perf_counter_ns() - at_ns)


async def _emit(
    resp: web.StreamResponse, stats: ServerStats, name: str, data: JSONDict, at_ns: int
) -> None:
    """Write one SSE event at ``at_ns`` (``write_at``)."""
    await write_at(resp, stats, name, wire.sse_event(name, data), at_ns)


async def send_headers_at(
    request: web.Request, resp: web.StreamResponse, at_ns: int, stats: ServerStats
) -> None:
    await sleep_until(at_ns)
    await resp.prepare(request)
    stats.record("headers", time.perf_counter_ns() - at_ns)


def close_connection(request: web.Request) -> None:
    """Close the connection now (pending bytes are flushed first, then FIN)."""
    request.protocol.force_close()


async def _http_fault(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """429 / 529 / 500 with the error envelope, at TTFB."""
    assert plan.fault is not None
    status = HTTP_FAULTS[plan.fault]
    extra = {"retry-after": "1"} if status == 429 else {}
    resp = error_response(status, plan.request_id, headers={**plan.headers(), **extra})
    return await send_at(request, resp, plan.ttfb_at, stats)


async def disconnect(request: web.Request, plan: RequestPlan) -> web.StreamResponse:
    """Close the connection at TTFB without sending anything."""
    await sleep_until(plan.ttfb_at)
    close_connection(request)
    return web.StreamResponse()


async def stall(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """Headers at TTFB, then nothing for ``STALL_S`` (cancelled when the client leaves)."""
    ctype = wire.SSE_CONTENT_TYPE if plan.stream else wire.JSON_CONTENT_TYPE
    resp = web.StreamResponse(headers={**plan.headers(), "content-type": ctype})
    try:
        await send_headers_at(request, resp, plan.ttfb_at, stats)
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


async def stream(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """A streamed (SSE) response, each event flushed on its own at its scheduled time."""
    headers = {**plan.headers(), "content-type": wire.SSE_CONTENT_TYPE, "cache-control": "no-cache"}
    resp = web.StreamResponse(status=200, headers=headers)
    resp.enable_chunked_encoding()
    try:
        await send_headers_at(request, resp, plan.ttfb_at, stats)
        await _stream_body(resp, plan, stats)
        if plan.fault == "truncate":
            close_connection(request)
        else:
            await resp.write_eof()
    except ConnectionError:
        pass  # the client went away; aiohttp finishes the exchange quietly
    return resp


async def non_stream(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """The whole JSON message when the last token would have been generated."""
    if plan.fault == "stream_error":  # mid-generation overload surfaces as an HTTP 529
        resp = error_response(529, plan.request_id, headers=plan.headers())
        return await send_at(request, resp, plan.last_sent_at, stats)
    text = plan.output_text()
    msg = wire.text_message(
        plan.message_id, plan.model, text, plan.stop_reason, plan.input_tokens, plan.n_tokens,
        plan.cache,
    )
    body = wire.dumps(msg).encode()
    if plan.fault != "truncate":
        resp = web.Response(body=body, content_type=wire.JSON_CONTENT_TYPE, headers=plan.headers())
        return await send_at(request, resp, plan.token_at[-1], stats)
    sresp = web.StreamResponse(headers={**plan.headers(), "content-type": wire.JSON_CONTENT_TYPE})
    sresp.content_length = len(body)
    try:
        await send_headers_at(request, sresp, plan.last_sent_at, stats)
        await sresp.write(body[: len(body) // 2])
    except ConnectionError:
        return sresp
    close_connection(request)
    return sresp


async def send_fault(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """Count the plan's fault; send it if it replaces the response, else return None."""
    if plan.fault is not None:
        stats.fault(plan.fault)
    if plan.fault in HTTP_FAULTS:
        return await _http_fault(request, plan, stats)
    if plan.fault == "disconnect":
        return await disconnect(request, plan)
    if plan.fault == "stall":
        return await stall(request, plan, stats)
    return None


async def send_messages(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    """The Messages response, streamed or whole (in-stream faults are the plan's to act on)."""
    if plan.stream:
        return await stream(request, plan, stats)
    return await non_stream(request, plan, stats)


