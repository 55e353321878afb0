"""Scripted agent turns: the emulator answers an agent's request with the task's tool calls.

A request is scripted when it offers ``tools`` and its first user message carries the
``[latlab-task: NAME]`` marker (runner/core/tasks.py). The turn is the number of tool-result
rounds already in the message history, so the reply depends only on the request: turn k
gets script step k as ``tool_use`` blocks (named as in the request's tool list: ``bash`` →
``Bash``/``bash``, ``mcp`` → any ``…__file_stats``; steps whose tools are not offered are
skipped), and after the last step the task's final text with ``end_turn``. Timing comes from
the request's plan (TTFB, TTFT, inter-token gaps of the model's profile).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from latlab.providers.emulator import anthropic_wire as wire
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.tasks import TASK_MARKER, WORKDIR_MARKER, load_task

JSONDict = dict[str, Any]
JSON_PIECE = 24  # characters of tool input JSON per input_json_delta


@dataclass(frozen=True)
class ScriptedReply:
    content: list[JSONDict]
    stop_reason: str


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def _tool_rounds(messages: list[Any]) -> int:
    """User messages that carry tool results: the turns already taken."""
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "user"
               and isinstance(m.get("content"), list)
               and any(isinstance(b, dict) and b.get("type") == "tool_result"
                       for b in m["content"]))


def _tool_name(logical: str, offered: list[str]) -> str | None:
    for name in offered:
        if logical == "mcp" and name.endswith("__file_stats"):
            return name
        if name.lower() == logical:
            return name
    return None


def _fill(value: Any, workdir: str) -> Any:
    return value.replace("{workdir}", workdir) if isinstance(value, str) else value


def _blocks(step: list[JSONDict], offered: list[str], workdir: str) -> list[JSONDict]:
    blocks = []
    for call in step:
        name = _tool_name(str(call["tool"]), offered)
        if name is not None:
            tool_input = {k: _fill(v, workdir) for k, v in call.items() if k != "tool"}
            blocks.append({"type": "tool_use", "id": wire.new_tool_use_id(), "name": name,
                           "input": tool_input})
    return blocks


def scripted_reply(body: Mapping[str, Any]) -> ScriptedReply | None:
    """The scripted answer to ``body``, or None when the request is not a scripted session."""
    offered = [str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)]
    if not offered:
        return None
    messages = body.get("messages") or []
    firsts = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    marker = TASK_MARKER.search(_text_of(firsts[0].get("content"))) if firsts else None
    if not offered or marker is None:
        return None
    try:
        task = load_task(marker.group(1))
    except ConfigError:
        return None
    where = WORKDIR_MARKER.search(_text_of(firsts[0].get("content")))
    workdir = where.group(1).strip() if where else "."
    steps = [b for b in (_blocks(s, offered, workdir) for s in task.script) if b]
    turn = _tool_rounds(messages)
    if turn < len(steps):
        text = {"type": "text", "text": f"Step {turn + 1} of {len(steps)}."}
        return ScriptedReply([text, *steps[turn]], "tool_use")
    return ScriptedReply([{"type": "text", "text": task.final}], "end_turn")


def _pieces(block: JSONDict) -> list[JSONDict]:
    """The content_block_delta payloads of one block."""
    if block["type"] == "text":
        return [{"type": "text_delta", "text": w} for w in re.findall(r"\S+\s*", block["text"])]
    text = json.dumps(block["input"], separators=(",", ":"))
    return [{"type": "input_json_delta", "partial_json": text[i:i + JSON_PIECE]}
            for i in range(0, len(text), JSON_PIECE)]


def _start_block(block: JSONDict) -> JSONDict:
    return {"type": "text", "text": ""} if block["type"] == "text" else {**block, "input": {}}


def stream_events(reply: ScriptedReply) -> list[tuple[str, JSONDict, bool]]:
    """Every event after ``message_start``: (name, data, carries a token)."""
    events: list[tuple[str, JSONDict, bool]] = []
    for index, block in enumerate(reply.content):
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": _start_block(block)}, False))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                            "delta": d}, True) for d in _pieces(block)]
        events.append(("content_block_stop", wire.content_block_stop(index), False))
    return events


def token_times(t_first: int, t_last: int, planned: int, n: int) -> list[int]:
    """``n`` token instants from the plan's first token at the plan's inter-token gap."""
    gap = (t_last - t_first) / max(planned - 1, 1)
    return [t_first + round(i * gap) for i in range(n)]


async def respond(request: web.Request, plan: Any, reply: ScriptedReply,
                  input_tokens: int) -> web.StreamResponse:
    """Send ``reply`` as the plan's timing says (streamed or whole)."""
    from latlab.providers.emulator.server import sleep_until

    events = stream_events(reply)
    n = sum(1 for e in events if e[2])
    times = token_times(plan.token_at[0], plan.token_at[-1], len(plan.token_at), max(n, 1))
    if not plan.stream:
        msg = wire.message(plan.message_id, plan.model, reply.content, reply.stop_reason,
                           input_tokens, n)
        await sleep_until(times[-1])
        return web.json_response(msg, headers=plan.headers(), dumps=wire.dumps)
    headers = {**plan.headers(), "content-type": wire.SSE_CONTENT_TYPE,
               "cache-control": "no-cache"}
    resp = web.StreamResponse(status=200, headers=headers)
    resp.enable_chunked_encoding()
    try:
        await sleep_until(plan.ttfb_at)
        await resp.prepare(request)
        start = wire.message_start(plan.message_id, plan.model, input_tokens)
        await resp.write(wire.sse_event("message_start", start))
        await _write_events(resp, events, times)
        delta = wire.message_delta(reply.stop_reason, input_tokens, n)
        await resp.write(wire.sse_event("message_delta", delta) +
                         wire.sse_event("message_stop", wire.message_stop()))
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def _write_events(resp: web.StreamResponse, events: list[tuple[str, JSONDict, bool]],
                        times: list[int]) -> None:
    from latlab.providers.emulator.server import sleep_until

    k = 0
    for name, data, token in events:
        if token:
            await sleep_until(times[k])
            k += 1
        await resp.write(wire.sse_event(name, data))


async def respond_bedrock(request: web.Request, bp: Any, reply: ScriptedReply) -> Any:
    """The scripted reply on Bedrock InvokeModel[WithResponseStream] (Bedrock's timing layers
    included): Anthropic events in ``chunk`` frames, or the whole message as the body."""
    from latlab.providers.emulator import bedrock_wire as bwire
    from latlab.providers.emulator.bedrock_routes import write_frame
    from latlab.providers.emulator.server import STATE_KEY, _send_headers_at, sleep_until

    p, stats = bp.plan, request.app[STATE_KEY].stats
    events = stream_events(reply)
    n = max(sum(1 for e in events if e[2]), 1)
    times = token_times(p.token_at[0], p.token_at[-1], len(p.token_at), n)
    if not bp.op.stream:
        message = wire.message(p.message_id, p.model, reply.content, reply.stop_reason,
                               p.input_tokens, n)
        headers = bwire.invoke_headers(p.request_id, bp.server_ms(times[-1]), p.input_tokens, n)
        await sleep_until(times[-1])
        return web.Response(body=bwire.invoke_body(message, bp.guardrail_action),
                            headers={**headers, **bp.headers()})
    resp = web.StreamResponse(status=200, headers={
        **bwire.stream_headers(p.request_id, True), **bp.headers()})
    resp.enable_chunked_encoding()
    try:
        await _send_headers_at(request, resp, p.ttfb_at, stats)
        for frame in _bedrock_frames(bp, reply, events, times):
            await write_frame(resp, stats, frame)
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


def _bedrock_frames(bp: Any, reply: ScriptedReply, events: list[tuple[str, JSONDict, bool]],
                    times: list[int]) -> list[tuple[str, bytes, int]]:
    from latlab.providers.emulator import bedrock_wire as bwire

    p = bp.plan
    start = wire.message_start(p.message_id, p.model, p.input_tokens)
    frames = [("message_start", bwire.chunk_frame(start), p.ttfb_at)]
    at, k = p.ttfb_at, 0
    for name, data, token in events:
        if token:
            at, k = times[k], k + 1
        frames.append((name, bwire.chunk_frame(data), at))
    metrics = bwire.invocation_metrics(p.input_tokens, k, bp.server_ms(at), bp.first_byte_ms)
    delta = wire.message_delta(reply.stop_reason, p.input_tokens, k)
    return frames + [
        ("message_delta", bwire.chunk_frame(delta), at),
        ("message_stop", bwire.chunk_frame(bwire.final_message_stop(metrics, bp.guardrail_action)),
         at)]
