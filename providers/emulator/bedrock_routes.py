"""The emulator's AWS Bedrock Runtime routes, paced like the Anthropic ones.

    POST /model/{modelId}/invoke                       InvokeModel
    POST /model/{modelId}/invoke-with-response-stream  InvokeModelWithResponseStream
    POST /model/{modelId}/converse                     Converse
    POST /model/{modelId}/converse-stream              ConverseStream

Each request is planned on arrival by the same ``EmulatorState.plan`` as ``/v1/messages``
(model timings from the profile's ``models``), then the profile's latency layers are drawn:
``bedrock.overhead_ms`` for the model's family, plus ``guardrail.overhead_ms`` when the request
carries a guardrail. Their sum shifts every send time (headers, first token, …); the share of
the layers that is not ``server_share`` is left out of the latency Bedrock reports
(``invocationLatency``/``firstByteLatency``, the ``X-Amzn-Bedrock-Invocation-Latency`` header,
Converse ``metrics.latencyMs``), which is otherwise request received → last (or first) byte.

Faults: every ``x-latlab-fault`` kind, in Bedrock's shape (``rate_limited``/``throttling`` →
429 ThrottlingException, ``overloaded`` → 503 ServiceUnavailableException, ``server_error`` →
500 InternalServerException, ``stream_error``/``stream_exception`` → a
``modelStreamErrorException`` frame after a few tokens, ``truncate``, ``disconnect``,
``stall``), plus ``bad_crc`` (a frame whose message CRC is wrong, then the connection closes).
Profile fault rates apply too (their kinds, in Bedrock's shape).

Rate limits (profile ``rate_limits``, ratelimit.py; per access key and region): an empty bucket
is HTTP 429 ``ThrottlingException`` (``x-amzn-ErrorType``, ``{"message": …}``) before any
planning. Bedrock sends no remaining-quota headers and no ``retry-after``, so neither does the
emulator (the shared wire-formats notes list none; a real throttle captured through boto3, in
epam/ai-dial-adapter-bedrock pull request 371, carries none and says "Too many tokens, …" for a
token quota).

An InvokeModel request offering ``tools`` in a latlab task session gets the task's scripted
turn (scripts.py) in InvokeModel's shape, with the same layers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from aiohttp import web

from latlab.providers.emulator import anthropic_wire
from latlab.providers.emulator import bedrock_wire as wire
from latlab.providers.emulator.capacity import Admission
from latlab.providers.emulator.eventstream import corrupt_crc
from latlab.providers.emulator.ratelimit import aws_key_of
from latlab.providers.emulator.scripts import (
    Event,
    ScriptedReply,
    scripted_reply,
    stream_events,
    token_times,
)
from latlab.providers.emulator.send import (
    STALL_S,
    admit_rate,
    capacity_slot,
    charge_output,
    close_connection,
    counted,
    disconnect,
    plan_admitted,
    send_at,
    send_headers_at,
    write_at,
)
from latlab.providers.emulator.state import (
    FAULT_DELTAS,
    STATE_KEY,
    EmulatorState,
    RequestPlan,
    ServerStats,
    sleep_until,
)

BEDROCK_FAULTS = ("throttling", "stream_exception", "bad_crc")
FAULT_ALIASES = {"throttling": "rate_limited", "stream_exception": "stream_error"}
HTTP_ERRORS = {"rate_limited": "ThrottlingException", "overloaded": "ServiceUnavailableException",
               "server_error": "InternalServerException"}
CUT_FAULTS = ("stream_error", "truncate", "bad_crc")  # a few tokens, then the fault
CONVERSE_DEFAULT_MAX_TOKENS = 4096
GUARDRAIL_HEADER = "x-amzn-bedrock-guardrailidentifier"
GUARDRAIL_VERSION_HEADER = "x-amzn-bedrock-guardrailversion"

Frame = tuple[str, bytes, int]  # (event name for the lag stats, bytes, send time ns)


@dataclass(frozen=True)
class Operation:
    """One Bedrock Runtime operation: its path suffix and shape."""

    path: str
    stream: bool
    converse: bool


OPERATIONS = (
    Operation("invoke", stream=False, converse=False),
    Operation("invoke-with-response-stream", stream=True, converse=False),
    Operation("converse", stream=False, converse=True),
    Operation("converse-stream", stream=True, converse=True),
)


@dataclass(frozen=True)
class BedrockPlan:
    """A request plan shifted by the Bedrock (+ guardrail) layers, and what to report."""

    plan: RequestPlan
    op: Operation
    guarded: bool
    intervened: bool
    hidden_ms: float  # layer time the client sees but Bedrock's reported latency leaves out
    texts: tuple[str, ...]

    def server_ms(self, at_ns: int) -> int:
        """What Bedrock reports for an instant: ms since arrival minus the hidden share."""
        return max(0, round((at_ns - self.plan.t0_ns) / 1e6 - self.hidden_ms))

    @property
    def deltas(self) -> int:
        n = self.plan.n_tokens
        return min(FAULT_DELTAS, n) if self.plan.fault in CUT_FAULTS else n

    @property
    def last_at(self) -> int:
        """When the last content token to be sent goes out (the headers' time if none)."""
        return self.plan.token_at[self.deltas - 1] if self.deltas else self.plan.ttfb_at

    @property
    def invocation_ms(self) -> int:
        return self.server_ms(self.plan.token_at[-1])

    @property
    def first_byte_ms(self) -> int:
        return self.server_ms(self.plan.ttfb_at)

    @property
    def guardrail_action(self) -> str | None:
        if not self.guarded:
            return None
        return "INTERVENED" if self.intervened else "NONE"

    @property
    def stop_reason(self) -> str:
        if self.intervened and self.op.converse:
            return "guardrail_intervened"
        return self.plan.stop_reason

    def headers(self) -> dict[str, str]:
        """The emulator's own ``x-latlab-*`` headers (planned times, fault)."""
        planned = self.plan.headers()
        planned.pop("request-id", None)
        return planned


# ---------------------------------------------------------------------------- requests


def error_response(error_type: str, request_id: str, message: str | None = None,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    """A rest-json error: status, ``x-amzn-ErrorType``, ``{"message": …}``."""
    return web.Response(status=wire.error_status(error_type),
                        body=wire.error_body(error_type, message),
                        headers={**wire.error_headers(error_type, request_id), **(headers or {})})


def auth_problem(request: web.Request) -> str | None:
    """The error type for a request AWS would refuse unauthenticated, or None.

    Accepts SigV4 (``AWS4-HMAC-SHA256 Credential=…``) or a Bedrock API key (``Bearer …``);
    signatures are not checked (the emulator does not know the secret).
    """
    value = request.headers.get("authorization", "").strip()
    if not value:
        return "MissingAuthenticationTokenException"
    scheme, _, rest = value.partition(" ")
    if scheme == "AWS4-HMAC-SHA256" and "Credential=" in rest:
        return None
    if scheme.lower() == "bearer" and rest.strip():
        return None
    return "IncompleteSignatureException"


def body_problem(body: Any, op: Operation) -> str | None:
    """The ValidationException message for a bad request body, or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages: field required (a non-empty list)"
    if op.converse:
        return None
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return "max_tokens: field required (integer >= 1)"
    return None


def guarded(request: web.Request, op: Operation, body: Mapping[str, Any]) -> bool:
    """Whether the request carries a guardrail (Invoke: headers; Converse: guardrailConfig)."""
    if op.converse:
        config = body.get("guardrailConfig")
        identifier = config.get("guardrailIdentifier") if isinstance(config, Mapping) else None
        version = config.get("guardrailVersion") if isinstance(config, Mapping) else None
    else:
        identifier = request.headers.get(GUARDRAIL_HEADER)
        version = request.headers.get(GUARDRAIL_VERSION_HEADER)
    if identifier and not version:
        raise ValueError("a guardrail identifier needs a guardrail version")
    return bool(identifier)


def model_body(model_id: str, op: Operation, body: Mapping[str, Any]) -> dict[str, Any]:
    """The Messages-shaped body ``EmulatorState.plan`` draws a plan for."""
    if op.converse:
        system, messages = wire.converse_as_messages(body)
        max_tokens = wire.converse_max_tokens(body, CONVERSE_DEFAULT_MAX_TOKENS)
        return {"model": model_id, "max_tokens": max_tokens, "messages": messages,
                "system": system, "stream": op.stream}
    return {"model": model_id, "max_tokens": int(body["max_tokens"]),
            "messages": body["messages"], "system": body.get("system"), "stream": op.stream}


def plan_request(state: EmulatorState, request: web.Request, op: Operation,
                 body: Mapping[str, Any], t0_ns: int, request_id: str,
                 admission: Admission) -> BedrockPlan:
    """Draw the model plan, then the layers. ValueError: bad request; KeyError: bad model.
    A request rejected by capacity gets ThrottlingException / ServiceUnavailableException."""
    is_guarded = guarded(request, op, body)
    messages_body = model_body(request.match_info["modelId"], op, body)
    plan = plan_admitted(request, messages_body, t0_ns, request_id, admission, BEDROCK_FAULTS,
                         FAULT_ALIASES)
    return add_layers(state, plan, op, is_guarded)


def add_layers(state: EmulatorState, plan: RequestPlan, op: Operation,
               is_guarded: bool) -> BedrockPlan:
    """Shift ``plan`` by the Bedrock overhead and guardrail time drawn for it."""
    layers, rng = state.profile, state.rng
    overhead = layers.bedrock.overhead_for(plan.model).sample(rng)
    assess = layers.guardrail.overhead_ms.sample(rng) if is_guarded else 0.0
    intervened = is_guarded and rng.random() < layers.guardrail.intervene_rate
    hidden = ((1 - layers.bedrock.server_share) * overhead
              + (1 - layers.guardrail.server_share) * assess)
    shift = round((overhead + assess) * 1e6)
    plan = replace(plan, message_id=wire.new_message_id(), ttfb_at=plan.ttfb_at + shift,
                   token_at=tuple(t + shift for t in plan.token_at))
    texts = [anthropic_wire.token_text(i) for i in range(plan.n_tokens)]
    if intervened:
        texts = wire.blocked_tokens()[: plan.n_tokens]
        plan = replace(plan, n_tokens=len(texts), token_at=plan.token_at[: len(texts)],
                       stop_reason="end_turn")
    return BedrockPlan(plan, op, is_guarded, intervened, hidden, tuple(texts))


# ---------------------------------------------------------------------------- frames


def invoke_frames(bp: BedrockPlan) -> list[Frame]:
    """InvokeModelWithResponseStream: one ``chunk`` frame per Anthropic event (no pings)."""
    p = bp.plan
    start = anthropic_wire.message_start(p.message_id, p.model, p.input_tokens, p.cache)
    frames: list[Frame] = [
        ("message_start", wire.chunk_frame(start), p.ttfb_at),
        ("content_block_start", wire.chunk_frame(anthropic_wire.content_block_start_text(0)),
         p.ttfb_at),
    ]
    for i in range(bp.deltas):
        delta = anthropic_wire.text_delta(bp.texts[i], 0)
        frames.append(("content_block_delta", wire.chunk_frame(delta), p.token_at[i]))
    return frames + invoke_ending(bp)


def invoke_ending(bp: BedrockPlan) -> list[Frame]:
    p, at = bp.plan, bp.last_at
    if p.fault in ("stream_error", "bad_crc", "truncate"):
        return fault_frames(bp, wire.chunk_frame(anthropic_wire.text_delta(" x", 0)))
    metrics = wire.invocation_metrics(p.input_tokens, p.n_tokens, bp.invocation_ms,
                                      bp.first_byte_ms, p.cache)
    stop = wire.final_message_stop(metrics, bp.guardrail_action)
    delta = anthropic_wire.message_delta(bp.stop_reason, p.input_tokens, p.n_tokens, p.cache)
    return [("content_block_stop", wire.chunk_frame(anthropic_wire.content_block_stop(0)), at),
            ("message_delta", wire.chunk_frame(delta), at),
            ("message_stop", wire.chunk_frame(stop), at)]


def fault_frames(bp: BedrockPlan, next_frame: bytes) -> list[Frame]:
    """What replaces the ending: an exception frame, a bad-CRC frame, or nothing (truncate)."""
    if bp.plan.fault == "stream_error":
        return [("modelStreamErrorException", wire.model_stream_error(), bp.last_at)]
    if bp.plan.fault == "bad_crc":
        return [("bad_crc", corrupt_crc(next_frame), bp.last_at)]
    return []


def converse_frames(bp: BedrockPlan) -> list[Frame]:
    """ConverseStream: messageStart, contentBlockDelta…, contentBlockStop, messageStop, metadata."""
    p, at = bp.plan, bp.last_at
    frames: list[Frame] = [("messageStart", wire.message_start(), p.ttfb_at)]
    for i in range(bp.deltas):
        frames.append(("contentBlockDelta", wire.content_block_delta(bp.texts[i]), p.token_at[i]))
    if p.fault in ("stream_error", "bad_crc", "truncate"):
        return frames + fault_frames(bp, wire.content_block_delta(" x"))
    return frames + [
        ("contentBlockStop", wire.content_block_stop(), at),
        ("messageStop", wire.message_stop(bp.stop_reason), at),
        ("metadata", wire.metadata(p.input_tokens, p.n_tokens, bp.invocation_ms, p.cache), at),
    ]


# ---------------------------------------------------------------------------- sending


async def send_stream(request: web.Request, bp: BedrockPlan, stats: ServerStats) -> Any:
    """A streamed response: headers at TTFB, then each frame flushed on its own."""
    headers = {**wire.stream_headers(bp.plan.request_id, not bp.op.converse), **bp.headers()}
    resp = web.StreamResponse(status=200, headers=headers)
    resp.enable_chunked_encoding()
    frames = converse_frames(bp) if bp.op.converse else invoke_frames(bp)
    try:
        await send_headers_at(request, resp, bp.plan.ttfb_at, stats)
        for frame in frames:
            await write_at(resp, stats, *frame)
        if bp.plan.fault in ("truncate", "bad_crc"):
            close_connection(request)
        else:
            await resp.write_eof()
    except ConnectionError:
        pass  # the client went away
    return resp


def whole_body(bp: BedrockPlan) -> tuple[bytes, dict[str, str]]:
    """The non-streamed body and its headers."""
    p = bp.plan
    text = "".join(bp.texts[: p.n_tokens])
    if bp.op.converse:
        body = wire.converse_body(text, bp.stop_reason, p.input_tokens, p.n_tokens,
                                  bp.invocation_ms, p.cache)
        headers = {"x-amzn-RequestId": p.request_id, "Content-Type": wire.JSON_CONTENT_TYPE}
        return body, {**headers, **bp.headers()}
    message = anthropic_wire.text_message(p.message_id, p.model, text, bp.stop_reason,
                                          p.input_tokens, p.n_tokens, p.cache)
    headers = wire.invoke_headers(p.request_id, bp.invocation_ms, p.input_tokens, p.n_tokens,
                                  p.cache)
    return wire.invoke_body(message, bp.guardrail_action), {**headers, **bp.headers()}


async def send_whole(request: web.Request, bp: BedrockPlan, stats: ServerStats) -> Any:
    """InvokeModel / Converse: the whole body when the last token would have been generated."""
    p = bp.plan
    if p.fault == "stream_error":  # a mid-generation failure surfaces as an HTTP error
        resp = error_response("ServiceUnavailableException", p.request_id, headers=bp.headers())
        return await send_at(request, resp, bp.last_at, stats)
    body, headers = whole_body(bp)
    if p.fault in ("truncate", "bad_crc"):
        return await send_cut_body(request, bp, body, headers, stats)
    resp = web.Response(body=body, headers=headers)
    return await send_at(request, resp, p.token_at[-1], stats)


async def send_cut_body(request: web.Request, bp: BedrockPlan, body: bytes,
                        headers: Mapping[str, str], stats: ServerStats) -> Any:
    """``truncate``: half the declared body, then close; ``bad_crc``: a malformed body."""
    resp = web.StreamResponse(headers=headers)
    resp.content_length = len(body)
    half = len(body) // 2
    try:
        await send_headers_at(request, resp, bp.last_at, stats)
        if bp.plan.fault == "bad_crc":
            await resp.write(body[:half] + b"\x00" * (len(body) - half))
            await resp.write_eof()
            return resp
        await resp.write(body[:half])
    except ConnectionError:
        return resp
    close_connection(request)
    return resp


async def send_stall(request: web.Request, bp: BedrockPlan, stats: ServerStats) -> Any:
    """Headers at TTFB, then nothing until the client gives up."""
    ctype = wire.EVENTSTREAM_CONTENT_TYPE if bp.op.stream else wire.JSON_CONTENT_TYPE
    resp = web.StreamResponse(headers={"x-amzn-RequestId": bp.plan.request_id,
                                       "Content-Type": ctype, **bp.headers()})
    try:
        await send_headers_at(request, resp, bp.plan.ttfb_at, stats)
    except ConnectionError:
        return resp
    await asyncio.sleep(STALL_S)
    return resp


async def send_planned(request: web.Request, bp: BedrockPlan, stats: ServerStats) -> Any:
    """Dispatch on the planned fault, then on the operation's shape."""
    fault = bp.plan.fault
    if fault is not None:
        stats.fault(fault)
    if fault in HTTP_ERRORS:
        extra = {"retry-after": "1"} if fault == "rate_limited" else {}
        resp = error_response(HTTP_ERRORS[fault], bp.plan.request_id,
                              headers={**bp.headers(), **extra})
        return await send_at(request, resp, bp.plan.ttfb_at, stats)
    if fault == "disconnect":
        return await disconnect(request, bp.plan)
    if fault == "stall":
        return await send_stall(request, bp, stats)
    if bp.op.stream:
        return await send_stream(request, bp, stats)
    return await send_whole(request, bp, stats)


async def send_scripted(request: web.Request, bp: BedrockPlan, reply: ScriptedReply,
                        stats: ServerStats) -> web.StreamResponse:
    """A scripted agent turn (scripts.py) on InvokeModel[WithResponseStream], Bedrock's layers
    included: Anthropic events in ``chunk`` frames, or the whole message as the body."""
    p = bp.plan
    events = stream_events(reply)
    n = max(sum(1 for e in events if e[2]), 1)
    times = token_times(p.token_at[0], p.token_at[-1], len(p.token_at), n)
    if not bp.op.stream:
        message = anthropic_wire.message(p.message_id, p.model, reply.content,
                                         reply.stop_reason, p.input_tokens, n)
        headers = wire.invoke_headers(p.request_id, bp.server_ms(times[-1]), p.input_tokens, n)
        await sleep_until(times[-1])
        return web.Response(body=wire.invoke_body(message, bp.guardrail_action),
                            headers={**headers, **bp.headers()})
    resp = web.StreamResponse(status=200, headers={
        **wire.stream_headers(p.request_id, True), **bp.headers()})
    resp.enable_chunked_encoding()
    try:
        await send_headers_at(request, resp, p.ttfb_at, stats)
        for frame in scripted_frames(bp, reply, events, times):
            await write_at(resp, stats, *frame)
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


def scripted_frames(bp: BedrockPlan, reply: ScriptedReply, events: list[Event],
                    times: list[int]) -> list[Frame]:
    """The ``chunk`` frames of a streamed scripted turn, each at its token's instant."""
    p = bp.plan
    start = anthropic_wire.message_start(p.message_id, p.model, p.input_tokens)
    frames = [("message_start", wire.chunk_frame(start), p.ttfb_at)]
    at, k = p.ttfb_at, 0
    for name, data, token in events:
        if token:
            at, k = times[k], k + 1
        frames.append((name, wire.chunk_frame(data), at))
    metrics = wire.invocation_metrics(p.input_tokens, k, bp.server_ms(at), bp.first_byte_ms)
    delta = anthropic_wire.message_delta(reply.stop_reason, p.input_tokens, k)
    return frames + [
        ("message_delta", wire.chunk_frame(delta), at),
        ("message_stop", wire.chunk_frame(wire.final_message_stop(metrics, bp.guardrail_action)),
         at)]


# ---------------------------------------------------------------------------- handlers


async def read_json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


async def handle(request: web.Request, t0_ns: int, op: Operation) -> web.StreamResponse:
    """One Bedrock request: auth, body, plan, send."""
    state = request.app[STATE_KEY]
    request_id = wire.new_request_id()
    problem = auth_problem(request)
    if problem is not None:
        return error_response(problem, request_id)
    body = await read_json(request)
    message = body_problem(body, op)
    if message is not None:
        return error_response("ValidationException", request_id, message)
    key = aws_key_of(request)
    verdict = admit_rate(request, key, anthropic_wire.estimate_input_tokens(body))
    if verdict.refused_by is not None:  # no quota headers, no retry-after: only the 429
        return error_response("ThrottlingException", request_id,
                              wire.throttling_message(verdict.refused_by))
    async with capacity_slot(state, request.match_info["modelId"]) as admission:
        try:
            bp = plan_request(state, request, op, body, t0_ns, request_id, admission)
        except ValueError as exc:
            return error_response("ValidationException", request_id, str(exc))
        except KeyError:
            return error_response("ValidationException", request_id,
                                  "The provided model identifier is invalid.")
        charge_output(request, key, bp.plan)
        return await send_bedrock(request, op, body, bp, state.stats)


async def send_bedrock(request: web.Request, op: Operation, body: Mapping[str, Any],
                       bp: BedrockPlan, stats: ServerStats) -> web.StreamResponse:
    """The planned response: a scripted agent turn (Invoke with tools), else the model's."""
    if bp.plan.fault is None and not op.converse and body.get("tools"):  # agent sessions
        scripted = scripted_reply(body)
        if scripted is not None:
            return await send_scripted(request, bp, scripted, stats)
    result = await send_planned(request, bp, stats)
    assert isinstance(result, web.StreamResponse)
    return result


def add_bedrock_routes(app: web.Application) -> None:
    """Register the four Bedrock Runtime operations (before any catch-all route)."""
    for op in OPERATIONS:
        app.router.add_post(f"/model/{{modelId}}/{op.path}", counted(partial(handle, op=op)))
