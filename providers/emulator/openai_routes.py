"""The emulator's OpenAI-compatible routes, paced like the Anthropic ones.

    POST /v1/chat/completions   chat completions, JSON or SSE (``data:`` chunks, ``[DONE]``)
    GET  /v1/models             the profile's model keys (clients that ask which models exist)

Each request is planned on arrival by the same ``EmulatorState.plan`` as ``/v1/messages``
(same latency profile, matched by model id), so an OpenAI-compatible cell and an Anthropic
cell of the same model see the same truth. The stream: a role chunk at TTFB, one content chunk
per token at its planned time, a chunk with ``finish_reason``, the usage chunk when the request
asked for it (``stream_options.include_usage``), ``data: [DONE]``. A request carrying
``reasoning_effort`` gets its first third of tokens as ``delta.reasoning_content`` (as
llama.cpp and vLLM send reasoning), so the first-reasoning and first-content instants differ.

Rate limits (profile ``rate_limits``, ratelimit.py; per bearer key): ``x-ratelimit-{limit,
remaining,reset}-{requests,tokens}`` on every answer, and an empty bucket's 429 with OpenAI's
``rate_limit_exceeded`` error and ``retry-after``.

Faults (``x-latlab-fault`` or the profile's rate), in OpenAI's shape: ``rate_limited`` → 429,
``overloaded`` → 503, ``server_error`` → 500 (``{"error": {…}}``); ``stream_error`` → a few
tokens then a ``data: {"error": …}`` chunk; ``truncate`` (no ``[DONE]``, connection closed),
``disconnect``, ``stall``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from latlab.providers.emulator import anthropic_wire
from latlab.providers.emulator import openai_wire as wire
from latlab.providers.emulator.ratelimit import (
    Verdict,
    api_key_of,
    go_duration,
    openai_headers,
    retry_after_header,
)
from latlab.providers.emulator.send import (
    admit_rate,
    capacity_slot,
    charge_output,
    close_connection,
    counted,
    disconnect,
    plan_admitted,
    send_at,
    send_headers_at,
    stall,
    write_at,
)
from latlab.providers.emulator.state import STATE_KEY, RequestPlan, ServerStats

HTTP_FAULTS = {"rate_limited": 429, "overloaded": 503, "server_error": 500}


@dataclass(frozen=True)
class ChatPlan:
    """A model plan plus what the OpenAI wire needs: id, usage wanted, reasoning share."""

    plan: RequestPlan
    completion_id: str
    created: int
    include_usage: bool
    reasoning_tokens: int

    def text(self, i: int) -> str:
        return anthropic_wire.token_text(i)

    def delta(self, i: int) -> dict[str, Any]:
        key = "reasoning_content" if i < self.reasoning_tokens else "content"
        return {key: self.text(i)}

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        p = self.plan
        return wire.sse_data(wire.chunk(self.completion_id, self.created, p.model, delta, finish))

    def usage(self) -> dict[str, Any]:
        p = self.plan
        return wire.usage(p.input_tokens, p.n_tokens, self.reasoning_tokens)


def error_response(status: int, request_id: str, message: str | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    body = wire.dumps(wire.error_body(status, message)).encode()
    return web.Response(status=status, body=body, content_type=wire.JSON_CONTENT_TYPE,
                        headers={"x-request-id": request_id, **(headers or {})})


def rate_limit_response(request_id: str, model: str, verdict: Verdict) -> web.Response:
    """429 for an empty bucket: OpenAI's error JSON, ``x-ratelimit-*`` and ``retry-after``."""
    assert verdict.refused_by is not None and verdict.retry_after_s is not None
    bucket = verdict.level(verdict.refused_by)
    limit = bucket.limit if bucket is not None else 0
    body = wire.rate_limit_body(verdict.refused_by, model, limit,
                                go_duration(verdict.retry_after_s))
    headers = {**openai_headers(verdict.levels), **retry_after_header(verdict.retry_after_s)}
    return web.Response(status=429, body=wire.dumps(body).encode(),
                        content_type=wire.JSON_CONTENT_TYPE,
                        headers={"x-request-id": request_id, **headers})


def authorized(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def body_problem(body: Any) -> str | None:
    """The 400 message for an invalid chat completions body, or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: field required"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages: field required (a non-empty list)"
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            return f"{key}: must be an integer >= 1"
    return None


def chat_plan(plan: RequestPlan, body: dict[str, Any]) -> ChatPlan:
    options = body.get("stream_options") or {}
    reasoning = plan.n_tokens // 3 if body.get("reasoning_effort") else 0
    return ChatPlan(plan, wire.new_completion_id(), int(time.time()),
                    bool(options.get("include_usage")) if isinstance(options, dict) else False,
                    reasoning)


# ---------------------------------------------------------------------------- sending


async def stream_body(resp: web.StreamResponse, cp: ChatPlan, stats: ServerStats) -> None:
    p = cp.plan
    await write_at(resp, stats, "chunk", cp.chunk({"role": "assistant", "content": ""}), p.ttfb_at)
    for i in range(p.deltas_to_send):
        await write_at(resp, stats, "chunk", cp.chunk(cp.delta(i)), p.token_at[i])
    at = p.last_sent_at
    if p.fault == "stream_error":
        error = wire.sse_data(wire.error_body(503))
        await write_at(resp, stats, "error", error, at)
        return
    if p.fault == "truncate":
        return
    finish = wire.finish_reason_for(p.stop_reason)
    await write_at(resp, stats, "chunk", cp.chunk({}, finish), at)
    if cp.include_usage:
        usage = wire.usage_chunk(cp.completion_id, cp.created, p.model, cp.usage())
        await write_at(resp, stats, "usage", wire.sse_data(usage), at)
    await write_at(resp, stats, "done", wire.DONE, at)


async def send_stream(request: web.Request, cp: ChatPlan, stats: ServerStats) -> Any:
    headers = {**cp.plan.headers(), "x-request-id": cp.plan.request_id,
               "content-type": wire.SSE_CONTENT_TYPE, "cache-control": "no-cache"}
    headers.pop("request-id", None)
    resp = web.StreamResponse(status=200, headers=headers)
    resp.enable_chunked_encoding()
    try:
        await send_headers_at(request, resp, cp.plan.ttfb_at, stats)
        await stream_body(resp, cp, stats)
        if cp.plan.fault == "truncate":
            close_connection(request)
        else:
            await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def send_whole(request: web.Request, cp: ChatPlan, stats: ServerStats) -> Any:
    p = cp.plan
    headers = {**p.headers(), "x-request-id": p.request_id}
    headers.pop("request-id", None)
    if p.fault == "stream_error":
        return await send_at(request, error_response(503, p.request_id, headers=headers),
                              p.last_sent_at, stats)
    texts = [cp.text(i) for i in range(p.n_tokens)]
    r = cp.reasoning_tokens
    body = wire.completion(cp.completion_id, p.model, "".join(texts[r:]),
                           "".join(texts[:r]) or None, wire.finish_reason_for(p.stop_reason),
                           cp.usage())
    data = wire.dumps(body).encode()
    if p.fault == "truncate":
        return await send_half(request, data, headers, p.last_sent_at, stats)
    resp = web.Response(body=data, content_type=wire.JSON_CONTENT_TYPE, headers=headers)
    return await send_at(request, resp, p.token_at[-1], stats)


async def send_half(request: web.Request, data: bytes, headers: dict[str, str], at: int,
                    stats: ServerStats) -> Any:
    """``truncate`` without streaming: the headers declare the whole body, half is sent, the
    connection closes (the client sees a short read, a ``truncated`` row)."""
    resp = web.StreamResponse(headers={**headers, "content-type": wire.JSON_CONTENT_TYPE})
    resp.content_length = len(data)
    try:
        await send_headers_at(request, resp, at, stats)
        await resp.write(data[: len(data) // 2])
    except ConnectionError:
        return resp
    close_connection(request)
    return resp


async def send_planned(request: web.Request, cp: ChatPlan, stats: ServerStats) -> Any:
    p = cp.plan
    if p.fault is not None:
        stats.fault(p.fault)
    if p.fault in HTTP_FAULTS:
        extra = {"retry-after": "1"} if p.fault == "rate_limited" else {}
        resp = error_response(HTTP_FAULTS[p.fault], p.request_id, headers=extra)
        return await send_at(request, resp, p.ttfb_at, stats)
    if p.fault == "disconnect":
        return await disconnect(request, p)
    if p.fault == "stall":
        return await stall(request, p, stats)
    if p.stream:
        return await send_stream(request, cp, stats)
    return await send_whole(request, cp, stats)


# ---------------------------------------------------------------------------- handlers


async def read_body(request: web.Request, request_id: str) -> dict[str, Any] | web.Response:
    """Auth and a valid chat completions body, or the error to send."""
    if not authorized(request):
        return error_response(401, request_id)
    try:
        body = await request.json()
    except ValueError:
        return error_response(400, request_id, "request body is not valid JSON")
    problem = body_problem(body)
    return error_response(400, request_id, problem) if problem is not None else body


async def handle(request: web.Request, t0_ns: int) -> web.StreamResponse:
    """``POST /v1/chat/completions``."""
    state = request.app[STATE_KEY]
    request_id = wire.new_request_id()
    body = await read_body(request, request_id)
    if isinstance(body, web.Response):
        return body
    key = "openai:" + api_key_of(request)  # another provider's account than /v1/messages
    verdict = admit_rate(request, key, wire.estimate_prompt_tokens(body))
    if verdict.refused_by is not None:
        return rate_limit_response(request_id, str(body["model"]), verdict)
    async with capacity_slot(state, str(body["model"])) as admission:
        try:
            plan = plan_admitted(request, wire.messages_as_anthropic(body), t0_ns, request_id,
                                 admission)
        except ValueError as exc:
            return error_response(400, request_id, str(exc))
        except KeyError:
            return error_response(404, request_id,
                                  f"The model `{body['model']}` does not exist.")
        plan = charge_output(request, key, plan, openai_headers)
        result = await send_planned(request, chat_plan(plan, body), state.stats)
    assert isinstance(result, web.StreamResponse)
    return result


async def handle_models(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models``: the profile's model keys as OpenAI model objects."""
    names = sorted(request.app[STATE_KEY].profile.models)
    data = [{"id": n, "object": "model", "created": 0, "owned_by": "latlab"} for n in names]
    return web.json_response({"object": "list", "data": data})


def add_openai_routes(app: web.Application) -> None:
    """Register the OpenAI-compatible routes (before any catch-all route)."""
    app.router.add_post("/v1/chat/completions", counted(handle))
    app.router.add_get("/v1/models", handle_models)
