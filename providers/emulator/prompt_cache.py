"""Prompt caching, emulated honestly: entries keyed by the cacheable prefix, with a TTL.

A request's prompt is read in the API's cache order (tools, then system, then messages);
every block carrying ``cache_control`` ends a cacheable prefix (a breakpoint). A prefix is
identified by a hash of the model id and every block up to and including the breakpoint
(``cache_control`` markers themselves excluded), so any change before a breakpoint misses.

- Lookup: the longest breakpoint prefix with a live entry is read from the cache
  (``cache_read_input_tokens``) and its entry's TTL is refreshed; the tokens from there to
  the last breakpoint are written (``cache_creation_input_tokens``, split by TTL in
  ``cache_creation``); the rest is ``input_tokens``. The three counters are disjoint.
- A written entry can be read once the writing request's first token is out (concurrent
  identical requests all miss, as on the real API), until ``ttl_s`` after its last use
  (``ttl_1h_s`` for ``cache_control: {ttl: "1h"}``).
- Prefixes shorter than ``min_tokens`` (per model family) are not cached.
- TTFT grows by ``prefill_ms_per_1k_tokens`` per 1,000 uncached input tokens (including
  the ones written) and ``cached_ms_per_1k_tokens`` per 1,000 tokens read.

YAML (all keys optional)::

    prompt_cache: {ttl_s: 300, ttl_1h_s: 3600, min_tokens: {haiku: 4096, default: 1024},
                   prefill_ms_per_1k_tokens: 25, cached_ms_per_1k_tokens: 2.5}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from latlab.providers.emulator.anthropic_wire import _text_chars
from latlab.providers.emulator.capacity import match_family

_KEYS = ("ttl_s", "ttl_1h_s", "min_tokens", "prefill_ms_per_1k_tokens",
         "cached_ms_per_1k_tokens")
CHARS_PER_TOKEN = 4  # as ``estimate_input_tokens`` counts


@dataclass(frozen=True)
class CacheProfile:
    ttl_s: float = 300.0
    ttl_1h_s: float = 3600.0
    min_tokens: dict[str, int] = field(default_factory=lambda: {"default": 1024})
    prefill_ms_per_1k_tokens: float = 0.0
    cached_ms_per_1k_tokens: float = 0.0

    @classmethod
    def parse(cls, value: Any, where: str = "prompt_cache") -> CacheProfile:
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        extra = set(value) - set(_KEYS)
        if extra:
            raise ValueError(f"{where}: unknown keys {sorted(extra)}")
        defaults = cls()
        numbers = {k: float(value.get(k, getattr(defaults, k)))
                   for k in _KEYS if k != "min_tokens"}
        for key, number in numbers.items():
            if not number >= 0:
                raise ValueError(f"{where}.{key}: must be >= 0, got {number}")
        minimum = value.get("min_tokens", 1024)
        families = ({str(k): int(v) for k, v in minimum.items()}
                    if isinstance(minimum, Mapping) else {"default": int(minimum)})
        return cls(numbers["ttl_s"], numbers["ttl_1h_s"], families,
                   numbers["prefill_ms_per_1k_tokens"], numbers["cached_ms_per_1k_tokens"])

    def min_tokens_for(self, model_id: str) -> int:
        family = match_family(self.min_tokens, model_id)
        return self.min_tokens[family] if family is not None else 1024

    def ttft_extra_ms(self, uncached_tokens: int, read_tokens: int) -> float:
        return (uncached_tokens * self.prefill_ms_per_1k_tokens
                + read_tokens * self.cached_ms_per_1k_tokens) / 1000


@dataclass(frozen=True)
class Breakpoint:
    """A cacheable prefix: its key, its length in tokens and its TTL class."""

    key: str
    tokens: int
    one_hour: bool


@dataclass
class CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    pending: list[Breakpoint] = field(default_factory=list)

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


@dataclass
class _Entry:
    available_at_ns: int
    expires_at_ns: int


def _without_marker(block: Any) -> Any:
    if isinstance(block, Mapping):
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _marker(block: Any) -> Mapping[str, Any] | None:
    if isinstance(block, Mapping) and isinstance(block.get("cache_control"), Mapping):
        marker: Mapping[str, Any] = block["cache_control"]
        return marker
    return None


def _blocks(body: Mapping[str, Any]) -> Iterator[tuple[Any, int, Mapping[str, Any] | None]]:
    """(identity, text characters, cache_control) of every block, in cache order."""
    for tool in body.get("tools") or []:
        yield ("tool", _without_marker(tool)), 0, _marker(tool)
    system = body.get("system")
    for block in [system] if isinstance(system, str) else (system or []):
        yield ("system", _without_marker(block)), _text_chars(block), _marker(block)
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        role = message.get("role") if isinstance(message, Mapping) else None
        for block in [content] if isinstance(content, str) else (content or []):
            yield (role, _without_marker(block)), _text_chars(block), _marker(block)


def breakpoints(model_id: str, body: Mapping[str, Any]) -> list[Breakpoint]:
    """Every cacheable prefix of the request, shortest first."""
    digest = hashlib.sha256(model_id.encode())
    chars, points = 0, []
    for identity, block_chars, marker in _blocks(body):
        digest.update(json.dumps(identity, sort_keys=True, default=str).encode())
        chars += block_chars
        if marker is not None:
            one_hour = str(marker.get("ttl", "5m")) == "1h"
            points.append(Breakpoint(digest.hexdigest(), chars // CHARS_PER_TOKEN, one_hour))
    return points


class PromptCache:
    """The emulator's cache: prefix key → when the entry is readable and when it expires."""

    MAX_ENTRIES = 4096

    def __init__(self, profile: CacheProfile) -> None:
        self.profile = profile
        self.entries: dict[str, _Entry] = {}
        self.hits = 0
        self.writes = 0

    def _live(self, key: str, now_ns: int) -> bool:
        entry = self.entries.get(key)
        return entry is not None and entry.available_at_ns <= now_ns < entry.expires_at_ns

    def _ttl_ns(self, point: Breakpoint) -> int:
        return round((self.profile.ttl_1h_s if point.one_hour else self.profile.ttl_s) * 1e9)

    def lookup(self, model_id: str, body: Mapping[str, Any], now_ns: int) -> CacheUsage:
        """Read the longest live prefix (refreshing its TTL); the rest up to the last
        breakpoint is to be written (``store`` it once the first token is out)."""
        minimum = self.profile.min_tokens_for(model_id)
        points = [p for p in breakpoints(model_id, body) if p.tokens >= minimum]
        hit = max((i for i, p in enumerate(points) if self._live(p.key, now_ns)), default=-1)
        usage = CacheUsage(read=points[hit].tokens if hit >= 0 else 0)
        for point in points[:hit + 1]:
            if self._live(point.key, now_ns):
                self.entries[point.key].expires_at_ns = now_ns + self._ttl_ns(point)
        previous = usage.read
        for point in points[hit + 1:]:
            segment = max(point.tokens - previous, 0)
            if point.one_hour:
                usage.write_1h += segment
            else:
                usage.write_5m += segment
            previous = max(previous, point.tokens)
        usage.pending = points[hit + 1:]
        self.hits += hit >= 0
        return usage

    def store(self, usage: CacheUsage, available_at_ns: int) -> None:
        """Write the pending prefixes, readable from ``available_at_ns``."""
        if len(self.entries) > self.MAX_ENTRIES:
            self.entries = {k: e for k, e in self.entries.items()
                            if e.expires_at_ns > available_at_ns}
        for point in usage.pending:
            self.entries[point.key] = _Entry(available_at_ns,
                                             available_at_ns + self._ttl_ns(point))
        self.writes += bool(usage.pending)

    def snapshot(self) -> dict[str, int]:
        return {"entries": len(self.entries), "hits": self.hits, "writes": self.writes}
