"""AWS Bedrock Runtime wire format: pure functions that build the exact bodies, frames and headers.

Nothing here knows about sockets or timing (``bedrock_routes`` decides *when*). References:
shared wire-formats notes, sections 2 (Bedrock Runtime) and 3 (event-stream framing).

- InvokeModel: the Anthropic message JSON (no request-side ``model``), plus the
  ``X-Amzn-Bedrock-*`` latency and token headers.
- InvokeModelWithResponseStream: one ``chunk`` event per Anthropic stream event, payload
  ``{"bytes": base64(event JSON), "p": padding}``; the last (``message_stop``) carries
  ``amazon-bedrock-invocationMetrics``.
- Converse / ConverseStream: the Converse JSON, or the ``messageStart`` …
  ``contentBlockDelta`` … ``contentBlockStop``, ``messageStop``, ``metadata`` events.
- Errors: rest-json (status, ``x-amzn-ErrorType``, ``{"message": …}``) before the stream;
  ``:message-type: exception`` frames inside it.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from typing import Any

from latlab.providers.emulator import anthropic_wire
from latlab.providers.emulator.eventstream import encode_message

JSONDict = dict[str, Any]

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
JSON_CONTENT_TYPE = "application/json"
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
METRICS_KEY = "amazon-bedrock-invocationMetrics"
GUARDRAIL_ACTION_KEY = "amazon-bedrock-guardrailAction"
BLOCKED_MESSAGE = "Sorry, the model cannot answer this question."
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# rest-json errors (wire-formats §2.5 and AWS auth errors): exception name → (status, message)
ERRORS: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "Malformed input request, please reformat your input."),
    "AccessDeniedException": (403, "You don't have access to the model with this ID."),
    "MissingAuthenticationTokenException": (403, "Missing Authentication Token"),
    "IncompleteSignatureException": (403, "Authorization header requires 'Credential' parameter."),
    "ResourceNotFoundException": (404, "The requested resource could not be found."),
    "ModelErrorException": (424, "The model failed to process the request."),
    "ThrottlingException": (429, "Too many requests, please wait before trying again."),
    "InternalServerException": (500, "The server encountered an internal error."),
    "ServiceUnavailableException": (503, "The service is temporarily unavailable."),
}


def new_request_id() -> str:
    """A fresh ``x-amzn-RequestId`` (a UUID, as AWS sends it)."""
    return str(uuid.uuid4())


def new_message_id() -> str:
    """A fresh Anthropic message id as Bedrock returns it (``msg_bdrk_01…``)."""
    return "msg_bdrk_" + anthropic_wire.new_message_id().removeprefix("msg_")


def dumps_bytes(data: Mapping[str, Any]) -> bytes:
    return anthropic_wire.dumps(data).encode()


# ---------------------------------------------------------------------------- errors


def throttling_message(bucket: str) -> str:
    """ThrottlingException's message for an empty bucket: requests, or tokens ("Too many
    tokens, …" as boto3 reports a token throttle: not in the shared notes, seen in captures)."""
    if bucket == "requests":
        return ERRORS["ThrottlingException"][1]
    return "Too many tokens, please wait before trying again."


def error_status(error_type: str) -> int:
    return ERRORS[error_type][0]


def error_body(error_type: str, message: str | None = None) -> bytes:
    """The rest-json error body: ``{"message": …}``."""
    return dumps_bytes({"message": message or ERRORS[error_type][1]})


def error_headers(error_type: str, request_id: str) -> dict[str, str]:
    return {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error_type + ERROR_TYPE_SUFFIX,
            "Content-Type": JSON_CONTENT_TYPE}


def exception_frame(exception_type: str, payload: Mapping[str, Any]) -> bytes:
    """A modelled in-stream exception (``:message-type: exception``)."""
    headers = {":exception-type": exception_type, ":content-type": JSON_CONTENT_TYPE,
               ":message-type": "exception"}
    return encode_message(headers, dumps_bytes(payload))


def model_stream_error(original_status: int = 529) -> bytes:
    """A ``modelStreamErrorException`` frame: the model failed mid-stream."""
    return exception_frame("modelStreamErrorException", {
        "message": "The model encountered an error while streaming the response.",
        "originalStatusCode": original_status,
        "originalMessage": "Overloaded",
    })


# ---------------------------------------------------------------------------- InvokeModel


Cache = tuple[int, int, int]  # tokens written, read, written with a one-hour TTL (the plan's)


def invocation_metrics(input_tokens: int, output_tokens: int, invocation_latency_ms: int,
                       first_byte_latency_ms: int, cache: Cache = (0, 0, 0)) -> JSONDict:
    """``amazon-bedrock-invocationMetrics`` of the final stream chunk (ms, tokens); the cache
    counts only when the request used the cache."""
    metrics: JSONDict = {"inputTokenCount": input_tokens, "outputTokenCount": output_tokens,
                         "invocationLatency": invocation_latency_ms,
                         "firstByteLatency": first_byte_latency_ms}
    if cache[0] or cache[1]:
        metrics.update(cacheReadInputTokenCount=cache[1], cacheWriteInputTokenCount=cache[0])
    return metrics


def invoke_body(message: Mapping[str, Any], guardrail_action: str | None) -> bytes:
    """The InvokeModel body: the Anthropic message, plus the guardrail action when guarded."""
    body = dict(message)
    if guardrail_action is not None:
        body[GUARDRAIL_ACTION_KEY] = guardrail_action
    return dumps_bytes(body)


def invoke_headers(request_id: str, invocation_latency_ms: int, input_tokens: int,
                   output_tokens: int, cache: Cache = (0, 0, 0)) -> dict[str, str]:
    """InvokeModel response headers (latency and token counts known when the body is sent)."""
    headers = {
        "x-amzn-RequestId": request_id,
        "Content-Type": JSON_CONTENT_TYPE,
        "X-Amzn-Bedrock-Invocation-Latency": str(invocation_latency_ms),
        "X-Amzn-Bedrock-Input-Token-Count": str(input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(output_tokens),
    }
    if cache[0] or cache[1]:
        headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(cache[1])
        headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(cache[0])
    return headers


def stream_headers(request_id: str, invoke: bool) -> dict[str, str]:
    """Headers of a streamed response (InvokeModelWithResponseStream or ConverseStream)."""
    headers = {"x-amzn-RequestId": request_id, "Content-Type": EVENTSTREAM_CONTENT_TYPE}
    if invoke:
        headers["X-Amzn-Bedrock-Content-Type"] = JSON_CONTENT_TYPE
    return headers


def padding(data: bytes) -> str:
    """The ``p`` member real chunks carry (clients ignore it); deterministic here."""
    return _PADDING[: 1 + len(data) % len(_PADDING)]


def event_frame(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """A normal event (``:message-type: event``) with a JSON payload."""
    headers = {":event-type": event_type, ":content-type": JSON_CONTENT_TYPE,
               ":message-type": "event"}
    return encode_message(headers, dumps_bytes(payload))


def chunk_frame(anthropic_event: Mapping[str, Any]) -> bytes:
    """A ``chunk`` event carrying one Anthropic stream event, base64 in ``bytes``."""
    data = dumps_bytes(anthropic_event)
    return event_frame("chunk", {"bytes": base64.b64encode(data).decode(), "p": padding(data)})


def final_message_stop(metrics: Mapping[str, Any], guardrail_action: str | None) -> JSONDict:
    """The last chunk's event: ``message_stop`` with the invocation metrics."""
    event: JSONDict = {"type": "message_stop", METRICS_KEY: dict(metrics)}
    if guardrail_action is not None:
        event[GUARDRAIL_ACTION_KEY] = guardrail_action
    return event


# ---------------------------------------------------------------------------- Converse


def converse_usage(input_tokens: int, output_tokens: int, cache: Cache = (0, 0, 0)) -> JSONDict:
    """``usage``: ``inputTokens`` excludes cached tokens; the cache members only when the
    request used the cache. Whether ``totalTokens`` counts cache tokens is unverified
    (shared/reference/wire-formats.md); here it does, as everything the request consumed."""
    usage: JSONDict = {"inputTokens": input_tokens, "outputTokens": output_tokens,
                       "totalTokens": input_tokens + output_tokens + cache[0] + cache[1]}
    if cache[0] or cache[1]:
        usage.update(cacheReadInputTokens=cache[1], cacheWriteInputTokens=cache[0])
    return usage


def converse_body(text: str, stop_reason: str, input_tokens: int, output_tokens: int,
                  latency_ms: int, cache: Cache = (0, 0, 0)) -> bytes:
    """The Converse response."""
    return dumps_bytes({
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": converse_usage(input_tokens, output_tokens, cache),
        "metrics": {"latencyMs": latency_ms},
    })


def message_start() -> bytes:
    return event_frame("messageStart", {"role": "assistant"})


def content_block_delta(text: str, index: int = 0) -> bytes:
    return event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": text}})


def content_block_stop(index: int = 0) -> bytes:
    return event_frame("contentBlockStop", {"contentBlockIndex": index})


def message_stop(stop_reason: str) -> bytes:
    return event_frame("messageStop", {"stopReason": stop_reason})


def metadata(input_tokens: int, output_tokens: int, latency_ms: int,
             cache: Cache = (0, 0, 0)) -> bytes:
    """The terminal ConverseStream event: usage and ``metrics.latencyMs``."""
    return event_frame("metadata", {"usage": converse_usage(input_tokens, output_tokens, cache),
                                    "metrics": {"latencyMs": latency_ms}})


# ---------------------------------------------------------------------------- requests


def converse_blocks(blocks: Any) -> list[JSONDict]:
    """Converse content (``{text}`` and ``{cachePoint}`` members) as Anthropic text blocks: a
    cache point marks the block before it with ``cache_control`` (the emulator's prompt cache
    keys on Anthropic-shaped prompts)."""
    out: list[JSONDict] = []
    for block in blocks if isinstance(blocks, list) else []:
        point = block.get("cachePoint") if isinstance(block, Mapping) else None
        if isinstance(point, Mapping) and out:
            ttl = {"ttl": point["ttl"]} if point.get("ttl") == "1h" else {}
            out[-1] = {**out[-1], "cache_control": {"type": "ephemeral", **ttl}}
        elif isinstance(block, Mapping) and isinstance(block.get("text"), str):
            out.append({"type": "text", "text": block["text"]})
    return out


def converse_as_messages(body: Mapping[str, Any]) -> tuple[list[JSONDict], list[JSONDict]]:
    """A Converse request's ``system`` and ``messages`` in the Anthropic shape."""
    messages = [{"role": m.get("role"), "content": converse_blocks(m.get("content"))}
                for m in body.get("messages") or [] if isinstance(m, Mapping)]
    return converse_blocks(body.get("system")), messages


def converse_max_tokens(body: Mapping[str, Any], default: int) -> int:
    """``inferenceConfig.maxTokens`` of a Converse request, else ``default``."""
    config = body.get("inferenceConfig") or {}
    value = config.get("maxTokens", default) if isinstance(config, Mapping) else default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("inferenceConfig.maxTokens: must be an integer >= 1")
    return value


def blocked_tokens() -> list[str]:
    """The guardrail's blocked message, as the tokens of an intervened response."""
    words = BLOCKED_MESSAGE.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]
