"""An incremental Server-Sent Events decoder (WHATWG rules, as the Anthropic SDK applies them).

Bytes are fed as they arrive; complete events come out. Events end at a blank line
(``\\n\\n``, ``\\r\\r`` or ``\\r\\n\\r\\n``); ``field: value`` with one optional space;
``:`` lines are comments; several ``data:`` lines join with ``\\n``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str


@dataclass
class SseDecoder:
    """Feed bytes, get events. Keeps any partial line or event between calls."""

    _buffer: str = ""
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk.decode("utf-8", errors="replace")
        events: list[SseEvent] = []
        lines = self._buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = lines.pop()  # the last piece has no newline yet
        for line in lines:
            event = self._take_line(line)
            if event is not None:
                events.append(event)
        return events

    def _take_line(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        if not self._data and not self._event:
            return None
        event = SseEvent(event=self._event or "message", data="\n".join(self._data))
        self._event, self._data = "", []
        return event

    @property
    def pending(self) -> bool:
        """True if bytes of an unfinished event are buffered (a truncated stream)."""
        return bool(self._buffer or self._data or self._event)
