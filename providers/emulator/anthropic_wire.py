"""Anthropic Messages API wire format: pure functions that build the exact bytes and JSON.

Nothing here knows about sockets or timing; the routes (send.py) decide *when* to send, this
module decides *what* the bytes are. Other protocols (Bedrock, OpenAI-compatible) belong in
their own sibling modules. Reference: shared wire-formats notes, section 1.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from typing import Any

JSONDict = dict[str, Any]

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"

_ID_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # base58

# HTTP status → (error.type, default message) as the API sends them.
ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Permission denied"),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit (emulated)."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


# Ids need to be unique, not secret, and must not consume the seeded latency generator.
_ID_RNG = random.Random()


def _random_suffix(length: int = 22) -> str:
    return "".join(_ID_RNG.choices(_ID_ALPHABET, k=length))


def new_message_id() -> str:
    """A fresh ``msg_01…`` id."""
    return "msg_01" + _random_suffix()


def new_request_id() -> str:
    """A fresh ``req_01…`` id (``request-id`` header and error ``request_id``)."""
    return "req_01" + _random_suffix()


def new_tool_use_id() -> str:
    """A fresh ``toolu_01…`` id."""
    return "toolu_01" + _random_suffix()


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # made once: hot path


def dumps(data: Mapping[str, Any]) -> str:
    """Single-line compact JSON, as the API emits it."""
    return _COMPACT.encode(data)


def sse_event(name: str, data: Mapping[str, Any]) -> bytes:
    """One SSE event: an ``event:`` line, one ``data:`` line of JSON, a blank line."""
    return f"event: {name}\ndata: {dumps(data)}\n\n".encode()


def token_text(index: int) -> str:
    """The deterministic text of output token ``index`` (0-based): ``" 1"``, ``" 2"``, …"""
    return f" {index + 1}"


def output_text(n_tokens: int) -> str:
    """The full text of a response of ``n_tokens`` tokens."""
    return "".join(token_text(i) for i in range(n_tokens))


def _text_chars(value: Any) -> int:
    """Characters of prompt text in a system/messages/content structure."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_chars(item) for item in value)
    if isinstance(value, dict):
        total = 0
        for key in ("text", "content", "thinking"):
            if key in value:
                total += _text_chars(value[key])
        return total
    return 0


def estimate_input_tokens(body: Mapping[str, Any]) -> int:
    """Deterministic token estimate: all prompt text characters / 4, at least 1."""
    chars = _text_chars(body.get("system")) + _text_chars(body.get("messages"))
    return max(1, chars // 4)


def usage(input_tokens: int, output_tokens: int, cache_write: int = 0, cache_read: int = 0,
          cache_write_1h: int = 0) -> JSONDict:
    """A ``usage`` block; the three input counters are disjoint (``cache_write_1h`` is the
    part of ``cache_write`` with a one-hour TTL)."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_write - cache_write_1h,
                           "ephemeral_1h_input_tokens": cache_write_1h},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(
    message_id: str,
    model: str,
    content: Iterable[JSONDict],
    stop_reason: str | None,
    input_tokens: int,
    output_tokens: int,
    cache: tuple[int, int, int] = (0, 0, 0),
) -> JSONDict:
    """A ``message`` object (the non-streaming body, or inside ``message_start``).

    ``cache``: (cache_write, cache_read, cache_write_1h) tokens."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage(input_tokens, output_tokens, *cache),
    }


def text_message(
    message_id: str, model: str, text: str, stop_reason: str, input_tokens: int, n_tokens: int,
    cache: tuple[int, int, int] = (0, 0, 0),
) -> JSONDict:
    """The complete non-streaming response with one text block."""
    block: JSONDict = {"type": "text", "text": text}
    return message(message_id, model, [block], stop_reason, input_tokens, n_tokens, cache)


def message_start(message_id: str, model: str, input_tokens: int,
                  cache: tuple[int, int, int] = (0, 0, 0)) -> JSONDict:
    """``message_start``: empty content, null stop_reason, placeholder output_tokens of 1."""
    msg = message(message_id, model, [], None, input_tokens, 1, cache)
    return {"type": "message_start", "message": msg}


def content_block_start_text(index: int = 0) -> JSONDict:
    block = {"type": "text", "text": ""}
    return {"type": "content_block_start", "index": index, "content_block": block}


def ping() -> JSONDict:
    return {"type": "ping"}


def text_delta(text: str, index: int = 0) -> JSONDict:
    delta = {"type": "text_delta", "text": text}
    return {"type": "content_block_delta", "index": index, "delta": delta}


def content_block_stop(index: int = 0) -> JSONDict:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, input_tokens: int, output_tokens: int,
                  cache: tuple[int, int, int] = (0, 0, 0)) -> JSONDict:
    """``message_delta`` with cumulative usage."""
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache[0],
            "cache_read_input_tokens": cache[1],
            "output_tokens": output_tokens,
        },
    }


def message_stop() -> JSONDict:
    return {"type": "message_stop"}


def error_object(status: int, message_text: str | None = None) -> JSONDict:
    """The inner ``{"type": …, "message": …}`` for an HTTP status."""
    error_type, default = ERROR_TYPES.get(status, ("api_error", "Internal server error"))
    return {"type": error_type, "message": message_text or default}


def error_body(status: int, request_id: str, message_text: str | None = None) -> JSONDict:
    """The HTTP error envelope: ``{"type":"error","error":{…},"request_id":"req_…"}``."""
    return {"type": "error", "error": error_object(status, message_text), "request_id": request_id}


def stream_error_event(status: int = 529, message_text: str | None = None) -> JSONDict:
    """The ``data`` of an in-stream ``event: error`` (no request_id inside streams)."""
    return {"type": "error", "error": error_object(status, message_text)}
