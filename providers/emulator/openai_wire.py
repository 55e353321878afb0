"""OpenAI-compatible chat completions wire format: pure functions building the exact bytes.

Streams are SSE with ``data:`` lines only (no ``event:`` lines); each ``data`` is one
``chat.completion.chunk`` in compact JSON; the stream ends with ``data: [DONE]``. With
``stream_options.include_usage`` one extra chunk with ``"choices": []`` and the usage comes
just before ``[DONE]``; every earlier chunk carries ``"usage": null``. Reasoning text (as
llama.cpp and vLLM send it) is ``delta.reasoning_content``. Reference: shared wire-formats
notes, section 5.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from latlab.providers.emulator import anthropic_wire

JSONDict = dict[str, Any]

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"
DONE = b"data: [DONE]\n\n"
SYSTEM_FINGERPRINT = "fp_latlab"

# HTTP status → (error.type, error.code, default message), OpenAI's envelope.
ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (emulated)."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_ID_RNG = random.Random()  # ids need not be secret and must not consume the latency seed
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_completion_id() -> str:
    return "chatcmpl-" + "".join(_ID_RNG.choices(_ALPHABET, k=29))


def new_request_id() -> str:
    """The ``x-request-id`` header value."""
    return "req_" + "".join(_ID_RNG.choices("0123456789abcdef", k=32))


dumps = anthropic_wire.dumps  # one compact JSON encoder for every wire


def sse_data(data: Mapping[str, Any]) -> bytes:
    """One SSE event: a single ``data:`` line of compact JSON and a blank line."""
    return f"data: {dumps(data)}\n\n".encode()


def messages_as_anthropic(body: Mapping[str, Any]) -> JSONDict:
    """The request as the Messages-shaped body ``EmulatorState.plan`` draws a plan for."""
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 4096
    return {"model": body["model"], "max_tokens": int(max_tokens),
            "messages": body["messages"], "stream": bool(body.get("stream", False))}


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """All message text characters / 4, at least 1 (the emulator's deterministic estimate)."""
    chars = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, Mapping))
    return max(1, chars // 4)


def chunk(completion_id: str, created: int, model: str, delta: JSONDict,
          finish_reason: str | None = None) -> JSONDict:
    """One ``chat.completion.chunk`` with a single choice."""
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish_reason}],
            "usage": None}


def usage(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> JSONDict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}}


def usage_chunk(completion_id: str, created: int, model: str, body: JSONDict) -> JSONDict:
    """The ``include_usage`` chunk: no choices, the usage."""
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": SYSTEM_FINGERPRINT, "choices": [],
            "usage": body}


def completion(completion_id: str, model: str, text: str, reasoning: str | None,
               finish_reason: str, usage_body: JSONDict) -> JSONDict:
    """The non-streamed ``chat.completion`` body."""
    message: JSONDict = {"role": "assistant", "content": text, "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish_reason}],
            "usage": usage_body}


def finish_reason_for(stop_reason: str) -> str:
    """The Anthropic-style plan's stop reason in OpenAI's words."""
    return "length" if stop_reason == "max_tokens" else "stop"


# a rate-limit bucket → how OpenAI's 429 names it (error.type, and the limit in the message)
RATE_LIMIT_NAMES = {"requests": ("requests", "requests per min (RPM)"),
                    "tokens": ("tokens", "tokens per min (TPM)"),
                    "input_tokens": ("tokens", "input tokens per min (ITPM)"),
                    "output_tokens": ("tokens", "output tokens per min (OTPM)")}


def rate_limit_body(bucket: str, model: str, limit: int, wait: str) -> JSONDict:
    """OpenAI's 429 for an empty bucket: ``type`` ``requests`` or ``tokens``, ``code``
    ``rate_limit_exceeded`` and the limit and the wait in the message, as OpenAI words it."""
    kind, what = RATE_LIMIT_NAMES[bucket]
    message = (f"Rate limit reached for {model} on {what}: Limit {limit}. "
               f"Please try again in {wait}.")
    return {"error": {"message": message, "type": kind, "param": None,
                      "code": "rate_limit_exceeded"}}


def error_body(status: int, message: str | None = None) -> JSONDict:
    """``{"error": {"message", "type", "param", "code"}}``."""
    kind, code, default = ERRORS.get(status, ERRORS[500])
    return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}
