"""Scripted agent turns: the emulator answers an agent's request with the task's tool calls.

A request is scripted when it offers ``tools`` and its first user message carries the
``[latlab-task: NAME]`` marker (runner/core/tasks.py). The turn is the number of tool-result
rounds already in the message history, so the reply depends only on the request: turn k
gets script step k as ``tool_use`` blocks (named as in the request's tool list: ``bash`` →
``Bash``/``bash``, ``mcp`` → any ``…__file_stats``; steps whose tools are not offered are
skipped), and after the last step the task's final text with ``end_turn``.

This module decides what a turn says (``scripted_reply``), its events (``stream_events``) and
their instants (``token_times``: TTFB, TTFT and inter-token gaps of the request's plan); the
routes send it on their wire (anthropic_routes.py, and bedrock_routes.py for InvokeModel).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from latlab.providers.emulator import anthropic_wire as wire
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.tasks import TASK_MARKER, WORKDIR_MARKER, load_task

JSONDict = dict[str, Any]
Event = tuple[str, JSONDict, bool]  # (event name, data, carries a token)
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


def stream_events(reply: ScriptedReply) -> list[Event]:
    """Every event after ``message_start``: (name, data, carries a token)."""
    events: list[Event] = []
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
