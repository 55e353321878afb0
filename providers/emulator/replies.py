"""Scripted replies: what the emulated model answers when a prompt matches a rule.

The emulator does not understand prompts; by default every answer is " 1 2 3 …". A
profile's optional ``replies`` list makes it answer a given text to prompts that contain
given phrases (case-insensitive; a rule's ``contains`` is one phrase or a list that must
all occur; first matching rule wins), so studies whose client logic reads the answer (a
small model classifying prompts for routing) run offline. Each word of ``text`` is one
output token, streamed as its own delta::

    replies:
      - {contains: ["small or large", "design"], text: "large"}
      - {contains: "small or large", text: "small"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from latlab.providers.emulator.anthropic_wire import _text_chars


@dataclass(frozen=True)
class ReplyRule:
    contains: tuple[str, ...]
    text: str

    @classmethod
    def parse(cls, value: Any, where: str) -> ReplyRule:
        if not isinstance(value, Mapping) or set(value) != {"contains", "text"}:
            raise ValueError(f"{where}: expected {{contains, text}}, got {value!r}")
        phrases = value["contains"]
        phrases = [phrases] if isinstance(phrases, str) else list(phrases)
        if not phrases or not all(isinstance(p, str) and p for p in phrases):
            raise ValueError(f"{where}.contains: one phrase or a list of phrases")
        if not str(value["text"]).split():
            raise ValueError(f"{where}.text: must not be empty")
        return cls(tuple(p.lower() for p in phrases), str(value["text"]))


def parse_replies(value: Any) -> tuple[ReplyRule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"replies: expected a list of {{contains, text}}, got {value!r}")
    return tuple(ReplyRule.parse(v, f"replies[{i}]") for i, v in enumerate(value))


def prompt_text(body: Mapping[str, Any]) -> str:
    """The request's last user message, as text."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            blocks = content if isinstance(content, list) else []
            return " ".join(str(b.get("text", "")) for b in blocks
                            if isinstance(b, Mapping) and _text_chars(b))
    return ""


def reply_tokens(rules: tuple[ReplyRule, ...], body: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The scripted reply's tokens (" word" each) for ``body``, or None (default answer)."""
    if not rules:
        return None
    text = prompt_text(body).lower()
    for rule in rules:
        if all(phrase in text for phrase in rule.contains):
            return tuple(f" {word}" for word in rule.text.split())
    return None
