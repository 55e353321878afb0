"""The emulator's Anthropic Messages routes.

    POST /v1/messages               a message, JSON or SSE, paced by the request's plan
    POST /v1/messages/count_tokens  the deterministic input-token estimate, at once

Auth: ``x-api-key`` or ``Authorization: Bearer …`` (any non-empty value). A request is planned
on arrival (``plan_admitted``), then sent as send.py's Messages response, or its fault
(``x-latlab-fault`` or the profile's rate). A request offering ``tools`` in a latlab task
session gets the task's scripted turn (scripts.py), sent here at the plan's times.
"""

from __future__ import annotations

from aiohttp import web

from latlab.providers.emulator import anthropic_wire as wire
from latlab.providers.emulator.capacity import Admission
from latlab.providers.emulator.ratelimit import (
    anthropic_headers,
    api_key_of,
    retry_after_header,
)
from latlab.providers.emulator.scripts import (
    Event,
    ScriptedReply,
    scripted_reply,
    stream_events,
    token_times,
)
from latlab.providers.emulator.send import (
    admit_rate,
    authorized,
    capacity_slot,
    charge_output,
    counted,
    error_response,
    plan_admitted,
    read_json_object,
    read_request,
    send_fault,
    send_messages,
)
from latlab.providers.emulator.state import STATE_KEY, JSONDict, RequestPlan, sleep_until


async def handle_messages(request: web.Request, t0: int) -> web.StreamResponse:
    """``POST /v1/messages``."""
    state, request_id = request.app[STATE_KEY], wire.new_request_id()
    body = await read_request(request, request_id)
    if isinstance(body, web.Response):
        return body
    key = api_key_of(request)
    verdict = admit_rate(request, key, wire.estimate_input_tokens(body))
    if verdict.retry_after_s is not None:  # a bucket is empty: 429 with retry-after
        return error_response(429, request_id, None, {**anthropic_headers(verdict.levels),
                                                      **retry_after_header(verdict.retry_after_s)})
    async with capacity_slot(state, str(body["model"])) as admission:
        return await _admitted(request, body, request_id, t0, admission, key)


async def _admitted(request: web.Request, body: JSONDict, request_id: str, t0: int,
                    admission: Admission, key: str) -> web.StreamResponse:
    """Plan and send a request that has a capacity slot (or was rejected beyond the queue)."""
    state = request.app[STATE_KEY]
    stats = state.stats
    try:
        plan = plan_admitted(request, body, t0, request_id, admission)
    except ValueError as exc:
        return error_response(400, request_id, str(exc))
    except KeyError:
        return error_response(404, request_id, f"model: {body['model']}")
    plan = charge_output(request, key, plan, anthropic_headers)
    result = await send_fault(request, plan, stats)
    if result is None and body.get("tools") and (scripted := scripted_reply(body)) is not None:
        result = await send_scripted(request, plan, scripted)  # agent sessions
    if result is None:
        result = await send_messages(request, plan, stats)
    assert isinstance(result, web.StreamResponse)
    return result


async def send_scripted(request: web.Request, plan: RequestPlan,
                        reply: ScriptedReply) -> web.StreamResponse:
    """Send a scripted agent turn as the plan's timing says (streamed or whole)."""
    events = stream_events(reply)
    n = sum(1 for e in events if e[2])
    times = token_times(plan.token_at[0], plan.token_at[-1], len(plan.token_at), max(n, 1))
    if not plan.stream:
        msg = wire.message(plan.message_id, plan.model, reply.content, reply.stop_reason,
                           plan.input_tokens, n)
        await sleep_until(times[-1])
        return web.json_response(msg, headers=plan.headers(), dumps=wire.dumps)
    headers = {**plan.headers(), "content-type": wire.SSE_CONTENT_TYPE,
               "cache-control": "no-cache"}
    resp = web.StreamResponse(status=200, headers=headers)
    resp.enable_chunked_encoding()
    try:
        await sleep_until(plan.ttfb_at)
        await resp.prepare(request)
        start = wire.message_start(plan.message_id, plan.model, plan.input_tokens)
        await resp.write(wire.sse_event("message_start", start))
        await _write_events(resp, events, times)
        delta = wire.message_delta(reply.stop_reason, plan.input_tokens, n)
        await resp.write(wire.sse_event("message_delta", delta) +
                         wire.sse_event("message_stop", wire.message_stop()))
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def _write_events(resp: web.StreamResponse, events: list[Event], times: list[int]) -> None:
    k = 0
    for name, data, token in events:
        if token:
            await sleep_until(times[k])
            k += 1
        await resp.write(wire.sse_event(name, data))


async def handle_count_tokens(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/count_tokens``: the same deterministic estimate, at once."""
    request_id = wire.new_request_id()
    if not authorized(request):
        return error_response(401, request_id, "x-api-key header is required")
    body = await read_json_object(request, request_id)
    if isinstance(body, web.Response):
        return body
    tokens = {"input_tokens": wire.estimate_input_tokens(body)}
    return web.json_response(tokens, headers={"request-id": request_id})


def add_anthropic_routes(app: web.Application) -> None:
    """Register the Messages routes (before any catch-all route)."""
    app.router.add_post("/v1/messages", counted(handle_messages))
    app.router.add_post("/v1/messages/count_tokens", handle_count_tokens)
