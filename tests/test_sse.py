"""The SSE decoder on bytes, fed in arbitrary pieces (WHATWG line ends, fields, comments)."""

from __future__ import annotations

from latlab.providers.sse import SseDecoder, SseEvent

STREAM = (b": keep-alive\r\nevent: content_block_delta\r\ndata: {\"a\":1}\r\n\r\n"
          b"data: [DONE]\r\n\r\ndata: x\ndata: y\n\nevent: ping\n\n")
EVENTS = [SseEvent("content_block_delta", b'{"a":1}'), SseEvent("message", b"[DONE]"),
          SseEvent("message", b"x\ny"), SseEvent("ping", b"")]


def decode(pieces: list[bytes]) -> list[SseEvent]:
    decoder = SseDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    assert not decoder.pending
    return events


def test_whole_and_byte_by_byte_give_the_same_events() -> None:
    assert decode([STREAM]) == EVENTS
    assert decode([STREAM[i:i + 1] for i in range(len(STREAM))]) == EVENTS


def test_cr_only_line_ends_dispatch_without_waiting_for_the_next_chunk() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: 1\r\r") == [SseEvent("message", b"1")]
    assert decoder.feed(b"\ndata: 2\r\r") == [SseEvent("message", b"2")]


def test_an_unfinished_event_is_pending() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: {\"partial\"") == [] and decoder.pending


def test_only_data_takes_a_lone_data_event_and_leaves_the_rest_to_feed() -> None:
    decoder = SseDecoder()
    assert decoder.only_data(b"data: {\"a\":1}\n\n") == b'{"a":1}'
    for chunk in (b"data: 1\n\ndata: 2\n\n", b"data: 1\r\n\r\n", b"event: x\ndata: 1\n\n",
                  b"data: 1\n"):
        assert decoder.only_data(chunk) is None, chunk
    decoder.feed(b"data: par")  # buffered: the next chunk ends that event
    assert decoder.only_data(b"data: 2\n\n") is None
    assert decoder.feed(b"data: 2\n\n") == [SseEvent("message", b"pardata: 2")]
