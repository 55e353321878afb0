"""The event-stream encoder and Bedrock frame builders, checked against botocore's decoder."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, EventStreamMessage

from latlab.providers.emulator import bedrock_wire
from latlab.providers.emulator.eventstream import corrupt_crc, crc32, encode_header, encode_message

CHUNK_HEADERS = {":event-type": "chunk", ":content-type": "application/json",
                 ":message-type": "event"}
# wire-formats §3.4: a chunk event with payload {"bytes":"e30="}, 107 bytes.
WORKED_EXAMPLE = (
    "0000006b0000004b6ace012d"
    "0b3a6576656e742d747970650700056368756e6b"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e"
    "0d3a6d6573736167652d747970650700056576656e74"
    "7b226279746573223a226533303d227d"
    "3651dbfe"
)
# Smithy's published vector (:message-type=event, :event-type=headers, booleanHeader=true).
SMITHY_VECTOR = ("AAAASwAAADv7Cl8VDTptZXNzYWdlLXR5cGUHAAVldmVudAs6ZXZlbnQtdHlwZQcAB2hlYWRlcnMN"
                 "Ym9vbGVhbkhlYWRlcgC4J9Ws")


def decode(data: bytes, step: int | None = None) -> list[EventStreamMessage]:
    """Feed ``data`` to botocore (whole, or ``step`` bytes at a time) and collect messages."""
    buffer, messages = EventStreamBuffer(), []
    step = step or len(data)
    for i in range(0, len(data), step):
        buffer.add_data(data[i:i + step])
        messages.extend(buffer)
    return messages


def test_worked_example_is_byte_exact() -> None:
    frame = encode_message(CHUNK_HEADERS, b'{"bytes":"e30="}')
    assert frame.hex() == WORKED_EXAMPLE
    [message] = decode(frame)
    assert message.headers == CHUNK_HEADERS and message.payload == b'{"bytes":"e30="}'


def test_exception_example_matches_the_reference() -> None:
    headers = {":exception-type": "throttlingException", ":content-type": "application/json",
               ":message-type": "exception"}
    frame = encode_message(headers, b'{"message":"Too many requests"}')
    assert len(frame) == 144
    assert frame[:12].hex() == "00000090000000618e91a9b7" and frame[-4:].hex() == "e67f8005"


def test_crc_matches_the_smithy_vector() -> None:
    raw = base64.b64decode(SMITHY_VECTOR)
    assert crc32(raw[:8]) == int.from_bytes(raw[8:12], "big")
    assert crc32(raw[:-4]) == int.from_bytes(raw[-4:], "big")
    [message] = decode(raw)
    assert message.headers == {":message-type": "event", ":event-type": "headers",
                               "booleanHeader": True}


def test_round_trip_across_split_reads() -> None:
    frames = [encode_message({":event-type": f"e{i}", "note": "héllo ✓"}, payload)
              for i, payload in enumerate([b"", b"{}", "ünïcode".encode() * 50])]
    messages = decode(b"".join(frames), step=7)
    assert [m.headers[":event-type"] for m in messages] == ["e0", "e1", "e2"]
    assert messages[1].payload == b"{}" and messages[0].payload == b""
    assert messages[0].headers["note"] == "héllo ✓"


def test_corrupted_crc_is_rejected_by_botocore() -> None:
    frame = corrupt_crc(encode_message(CHUNK_HEADERS, b"{}"))
    with pytest.raises(ChecksumMismatch):
        decode(frame)


def test_header_limits() -> None:
    with pytest.raises(ValueError):
        encode_header("x" * 256, "v")
    with pytest.raises(ValueError):
        encode_header("", "v")
    with pytest.raises(ValueError):
        encode_header("n", "v" * 70_000)


def test_chunk_frame_carries_the_anthropic_event_in_base64() -> None:
    event = {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": " 1"}}
    [message] = decode(bedrock_wire.chunk_frame(event))
    assert message.headers == CHUNK_HEADERS
    payload = json.loads(message.payload)
    assert json.loads(base64.b64decode(payload["bytes"])) == event
    assert payload["p"]  # the padding member real chunks carry


def test_exception_and_converse_frames() -> None:
    [error] = decode(bedrock_wire.model_stream_error())
    assert error.headers[":message-type"] == "exception"
    assert error.headers[":exception-type"] == "modelStreamErrorException"
    assert json.loads(error.payload)["originalStatusCode"] == 529
    [meta] = decode(bedrock_wire.metadata(5, 7, 123))
    assert meta.headers[":event-type"] == "metadata"
    assert json.loads(meta.payload) == {"usage": {"inputTokens": 5, "outputTokens": 7,
                                                  "totalTokens": 12},
                                        "metrics": {"latencyMs": 123}}
