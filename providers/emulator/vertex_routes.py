"""The emulator's Vertex AI routes for Claude, paced like the Anthropic ones.

    POST /v1/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:METHOD

with METHOD ``rawPredict`` (one JSON message) or ``streamRawPredict`` (SSE).

The body is a Messages body without ``model`` (the path has it) and with any
``anthropic_version``; the answer is the Anthropic JSON or SSE stream, byte for byte as on
``/v1/messages``, with the same latency profile (model matched by substring, so
``claude-haiku-4-5@20251001`` is a Haiku). Auth: ``Authorization: Bearer <token>`` (any
non-empty token). Request ids look like Vertex's (``req_vrtx_…``); faults by ``x-latlab-fault``
or the profile's rate, as on the Anthropic routes. Rate limits (profile ``rate_limits``,
ratelimit.py; per project and region): an empty bucket is Google's 429 ``RESOURCE_EXHAUSTED``
(vertex_wire.py), with no quota headers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from latlab.providers.emulator import anthropic_wire as wire
from latlab.providers.emulator import vertex_wire
from latlab.providers.emulator.send import (
    admit_rate,
    capacity_slot,
    charge_output,
    counted,
    error_response,
    plan_admitted,
    read_json_object,
    send_fault,
    send_messages,
    validate_body,
)
from latlab.providers.emulator.state import STATE_KEY, RequestPlan, ServerStats

METHODS = {"rawPredict": False, "streamRawPredict": True}  # method → streamed


def new_request_id() -> str:
    return "req_vrtx_" + wire.new_request_id().removeprefix("req_")


def authorized(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


async def read_body(request: web.Request, request_id: str) -> dict[str, Any] | web.Response:
    """The request as a Messages body (model from the path), or the error to send."""
    model, _, method = request.match_info["model_method"].rpartition(":")
    if method not in METHODS or not model:
        return error_response(404, request_id, f"unknown method {method!r}")
    if not authorized(request):
        return error_response(401, request_id, "Authorization: Bearer <token> is required")
    body = await read_json_object(request, request_id)
    if isinstance(body, web.Response):
        return body
    body = {**body, "model": model, "stream": METHODS[method] and bool(body.get("stream", True))}
    problem = validate_body(body)
    return error_response(400, request_id, problem) if problem else body


def quota_key(request: web.Request) -> str:
    """The buckets' key: Vertex quotas are per project and region (and base model; the
    emulator keeps one set of buckets for all models of a project and region)."""
    return f"{request.match_info['project']}/{request.match_info['region']}"


def quota_exceeded(bucket: str, model: str) -> web.Response:
    """Google's 429 from its front end: no Anthropic ``request-id`` (the model never saw the
    request), no remaining-quota headers, no retry-after (the shared notes list none for
    Vertex, and Google's "error code 429" guide for Vertex mentions neither)."""
    body = vertex_wire.quota_error_body(bucket, model)
    return web.Response(status=429, body=body, content_type=vertex_wire.JSON_CONTENT_TYPE)


async def send_plan(request: web.Request, plan: RequestPlan, stats: ServerStats) -> Any:
    faulted = await send_fault(request, plan, stats)
    return faulted if faulted is not None else await send_messages(request, plan, stats)


async def handle(request: web.Request, t0_ns: int) -> web.StreamResponse:
    """``…/models/{model}:rawPredict`` and ``:streamRawPredict``."""
    state = request.app[STATE_KEY]
    request_id = new_request_id()
    body = await read_body(request, request_id)
    if isinstance(body, web.Response):
        return body
    key = quota_key(request)
    verdict = admit_rate(request, key, wire.estimate_input_tokens(body))
    if verdict.refused_by is not None:
        return quota_exceeded(verdict.refused_by, str(body["model"]))
    async with capacity_slot(state, str(body["model"])) as admission:
        try:
            plan = plan_admitted(request, body, t0_ns, request_id, admission)
        except ValueError as exc:
            return error_response(400, request_id, str(exc))
        except KeyError:
            return error_response(404, request_id, f"model: {body['model']}")
        plan = charge_output(request, key, plan)
        result = await send_plan(request, plan, state.stats)
    assert isinstance(result, web.StreamResponse)
    return result


def add_vertex_routes(app: web.Application) -> None:
    """Register the Vertex publisher-model routes (before any catch-all route)."""
    app.router.add_post("/v1/projects/{project}/locations/{region}/publishers/anthropic/models/"
                        "{model_method}", counted(handle))
