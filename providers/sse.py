"""An incremental Server-Sent Events decoder (WHATWG rules, as the Anthropic SDK applies them).

Bytes are fed as they arrive; complete events come out, their data still bytes (``json.loads``
takes bytes: no intermediate strings). Events end at a blank line (``\\n\\n``, ``\\r\\r`` or
``\\r\\n\\r\\n``); ``field: value`` with one optional space; ``:`` lines are comments; several
``data:`` lines join with ``\\n``. The common event, one ``data:`` line, is cut out of the
buffer whole, without splitting it into lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

DATA = b"data: "


class SseEvent(NamedTuple):
    """One event: its type (``message`` unless named) and its data, still bytes."""

    event: str
    data: bytes


@dataclass
class SseDecoder:
    """Feed bytes, get events. Keeps the unfinished event's bytes between calls."""

    _buffer: bytes = b""
    _after_cr: bool = False  # the last chunk ended in CR: a LF starting the next one is its pair

    def feed(self, chunk: bytes) -> list[SseEvent]:
        data = self.only_data(chunk)
        if data is not None:  # the common chunk: one event
            return [SseEvent("message", data)]
        if b"\r" in chunk or self._after_cr:
            chunk = self._normalize(chunk)
        blocks = (self._buffer + chunk if self._buffer else chunk).split(b"\n\n")
        self._buffer = blocks.pop()  # the last piece has no blank line yet
        events = [_block(block) for block in blocks]
        return [e for e in events if e is not None]

    def only_data(self, chunk: bytes) -> bytes | None:
        """The data of ``chunk`` if it is exactly one ``data:`` line and its blank line, with
        nothing buffered before it (the common chunk, decoded without building an event);
        else None, and nothing consumed: ``feed`` it."""
        if (self._buffer or self._after_cr or not chunk.startswith(DATA)
                or not chunk.endswith(b"\n\n") or chunk.find(b"\n") != len(chunk) - 2
                or b"\r" in chunk):
            return None
        return chunk[len(DATA):-2]

    def _normalize(self, chunk: bytes) -> bytes:
        """CRLF and CR line ends as LF, a CRLF split across two chunks included."""
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    @property
    def pending(self) -> bool:
        """True if bytes of an unfinished event are buffered (a truncated stream)."""
        return bool(self._buffer.strip(b"\n"))


def _block(block: bytes) -> SseEvent | None:
    """One event's lines (no blank line inside) as an event; None for comments only."""
    if block.startswith(DATA) and b"\n" not in block:
        return SseEvent("message", block[len(DATA):])
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if name == b"event":
            event = value.decode("utf-8", errors="replace")
        elif name == b"data":
            data.append(value)
    if not data and not event:
        return None
    return SseEvent(event or "message", b"\n".join(data))
