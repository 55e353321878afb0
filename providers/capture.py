"""Optional capture of the response message (content blocks) while a provider times it.

Latency runs only need timings, so providers do not keep response content. An agent loop
needs the assistant's content (text and ``tool_use`` blocks) to continue: it sets
``current_capture`` to a ``MessageCapture`` around ``provider.send`` and the Anthropic event
interpreter (direct API, Bedrock InvokeModel) fills it. Unset, nothing is kept.
"""

from __future__ import annotations

import contextvars
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MessageCapture:
    """The assistant message rebuilt from stream events (or taken whole when not streamed)."""

    content: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    message_id: str | None = None
    response_bytes: int = 0
    _partial_json: dict[int, list[str]] = field(default_factory=dict)

    def event(self, name: str, data: dict[str, Any]) -> None:
        if name == "message_start":
            message = data.get("message") or {}
            self.model, self.message_id = message.get("model"), message.get("id")
        elif name == "content_block_start":
            self._start(int(data.get("index", len(self.content))), data["content_block"])
        elif name == "content_block_delta":
            self._delta(int(data.get("index", 0)), data.get("delta") or {})
        elif name == "content_block_stop":
            self._stop(int(data.get("index", 0)))

    def message(self, message: dict[str, Any]) -> None:
        """A non-streamed response: the whole message at once."""
        self.content = list(message.get("content") or [])
        self.model, self.message_id = message.get("model"), message.get("id")

    def _start(self, index: int, block: dict[str, Any]) -> None:
        while len(self.content) <= index:
            self.content.append({})
        self.content[index] = dict(block)
        if block.get("type") == "tool_use":
            self._partial_json[index] = []

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        if index >= len(self.content):
            return
        block = self.content[index]
        if delta.get("type") == "text_delta":
            block["text"] = block.get("text", "") + str(delta.get("text", ""))
        elif delta.get("type") == "input_json_delta":
            self._partial_json.setdefault(index, []).append(str(delta.get("partial_json", "")))

    def _stop(self, index: int) -> None:
        parts = self._partial_json.pop(index, None)
        if parts is not None and index < len(self.content):
            text = "".join(parts)
            try:
                self.content[index]["input"] = json.loads(text) if text else {}
            except ValueError:
                self.content[index]["input"] = {"_unparsed": text}

    def tool_uses(self) -> list[dict[str, Any]]:
        return [b for b in self.content if b.get("type") == "tool_use"]

    def text(self) -> str:
        return "".join(str(b.get("text", "")) for b in self.content if b.get("type") == "text")


current_capture: contextvars.ContextVar[MessageCapture | None] = contextvars.ContextVar(
    "latlab_message_capture", default=None)
