"""Per-key rate limits like the Anthropic API's: token buckets for requests, input tokens and
output tokens per minute, the ``anthropic-ratelimit-*`` headers on every response, and a 429
with ``retry-after`` when a bucket cannot cover a request.

YAML (profile section ``rate_limits``; a limit left out is unlimited)::

    rate_limits: {requests_per_minute: 50, input_tokens_per_minute: 30000,
                  output_tokens_per_minute: 8000}

A bucket holds one minute's worth and refills continuously. A request needs one request and
its estimated input tokens, and an output bucket that is not empty; its output tokens are
charged once planned (the bucket may go into debt, as the API's estimate does).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

LIMITS = ("requests", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class RateLimitProfile:
    """Per-minute limits, per API key; None = unlimited."""

    per_minute: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> RateLimitProfile:
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ValueError(f"rate_limits: expected a mapping, got {value!r}")
        limits: dict[str, float] = {}
        for key, amount in value.items():
            name = str(key).removesuffix("_per_minute")
            if name not in LIMITS or not str(key).endswith("_per_minute"):
                raise ValueError(f"rate_limits.{key}: unknown limit; use "
                                 + ", ".join(f"{n}_per_minute" for n in LIMITS))
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
                raise ValueError(f"rate_limits.{key}: must be a number > 0, got {amount!r}")
            limits[name] = float(amount)
        return cls(limits)


@dataclass
class TokenBucket:
    capacity: float
    level: float
    updated: float

    @property
    def rate_per_s(self) -> float:
        return self.capacity / 60.0

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate_per_s)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the bucket holds ``amount`` (capped at a full bucket)."""
        return max(0.0, (min(amount, self.capacity) - self.level) / self.rate_per_s)


@dataclass(frozen=True)
class Verdict:
    """A request's admission: the headers to send, and retry-after when refused."""

    headers: dict[str, str]
    retry_after_s: float | None = None


class RateLimiter:
    """The buckets of every API key seen."""

    def __init__(self, profile: RateLimitProfile,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.profile, self.clock = profile, clock
        self.keys: dict[str, dict[str, TokenBucket]] = {}

    def _buckets(self, key: str) -> dict[str, TokenBucket]:
        now = self.clock()
        limits = self.profile.per_minute
        buckets = self.keys.setdefault(
            key, {name: TokenBucket(limit, limit, now) for name, limit in limits.items()})
        for bucket in buckets.values():
            bucket.refill(now)
        return buckets

    def admit(self, key: str, input_tokens: int) -> Verdict:
        """Take one request and ``input_tokens``, or refuse with the wait until they fit."""
        buckets = self._buckets(key)
        need = {"requests": 1.0, "input_tokens": float(input_tokens), "output_tokens": 1.0}
        wait = max((b.wait_for(need[n]) for n, b in buckets.items()), default=0.0)
        if wait > 0:
            return Verdict(self.headers(key), retry_after_s=wait)
        for name in ("requests", "input_tokens"):
            if name in buckets:
                buckets[name].level -= need[name]
        return Verdict(self.headers(key))

    def charge_output(self, key: str, output_tokens: int) -> None:
        bucket = self._buckets(key).get("output_tokens")
        if bucket is not None:
            bucket.level -= output_tokens

    def headers(self, key: str) -> dict[str, str]:
        """``anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset}``
        (reset: when the bucket is full again, RFC 3339)."""
        now = datetime.now(UTC)
        out: dict[str, str] = {}
        for name, bucket in self.keys.get(key, {}).items():
            prefix = f"anthropic-ratelimit-{name.replace('_', '-')}-"
            full_in = (bucket.capacity - bucket.level) / bucket.rate_per_s
            out[prefix + "limit"] = str(int(bucket.capacity))
            out[prefix + "remaining"] = str(max(0, math.floor(bucket.level)))
            out[prefix + "reset"] = (now + timedelta(seconds=full_in)).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        return out


def retry_after_header(seconds: float) -> dict[str, str]:
    """``retry-after`` in whole seconds, rounded up (at least 1), as the API sends it."""
    return {"retry-after": str(max(1, math.ceil(seconds)))}


def api_key_of(request: Any) -> str:
    """The key whose buckets a request draws from: ``x-api-key``, else the bearer token."""
    headers = request.headers
    key = str(headers.get("x-api-key", "")).strip()
    return key or str(headers.get("authorization", "")).partition(" ")[2].strip()
