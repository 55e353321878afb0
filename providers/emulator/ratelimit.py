"""Per-key rate limits like the real APIs': token buckets for requests, input tokens, output
tokens and (input + output) tokens per minute, and a 429 when a bucket cannot cover a request.
The buckets and their rule are here, once, for every route; each route says it in its own
provider's wire format (``anthropic_headers``, ``openai_headers``; Bedrock and Vertex send no
remaining-quota headers, only their 429).

YAML (profile section ``rate_limits``; a limit left out is unlimited)::

    rate_limits: {requests_per_minute: 50, input_tokens_per_minute: 30000,
                  output_tokens_per_minute: 8000, tokens_per_minute: 40000}

A bucket holds one minute's worth and refills continuously. A request needs one request and
its estimated input tokens (from ``input_tokens`` and ``tokens``), and an output bucket that
is not empty; its output tokens are charged once planned (to ``output_tokens`` and
``tokens``: a bucket may go into debt, as the API's estimate does).

Keys: the API key (``api_key_of``: Anthropic, OpenAI-compatible), the AWS access key and
region (``aws_key_of``: Bedrock quotas are per account and region), the Google Cloud project
and region (Vertex quotas are per project and region).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

LIMITS = ("requests", "input_tokens", "output_tokens", "tokens")
OPENAI_LIMITS = ("requests", "tokens")  # the only buckets x-ratelimit-* reports


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
class Level:
    """One bucket as a response reports it: its limit, what remains, seconds until full."""

    name: str
    limit: int
    remaining: int
    reset_s: float


@dataclass(frozen=True)
class Verdict:
    """A request's admission: the buckets' levels; when refused, the wait and the bucket."""

    levels: tuple[Level, ...]
    retry_after_s: float | None = None
    refused_by: str | None = None

    def level(self, name: str) -> Level | None:
        return next((lv for lv in self.levels if lv.name == name), None)


class RateLimiter:
    """The buckets of every key seen."""

    def __init__(self, profile: RateLimitProfile,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.profile, self.clock = profile, clock
        self.keys: dict[str, dict[str, TokenBucket]] = {}

    def _buckets(self, key: str) -> dict[str, TokenBucket]:
        limits = self.profile.per_minute
        if not limits:  # unlimited: no key is remembered
            return {}
        now = self.clock()
        buckets = self.keys.setdefault(
            key, {name: TokenBucket(limit, limit, now) for name, limit in limits.items()})
        for bucket in buckets.values():
            bucket.refill(now)
        return buckets

    def admit(self, key: str, input_tokens: int) -> Verdict:
        """Take one request and ``input_tokens``, or refuse with the wait until they fit."""
        buckets = self._buckets(key)
        take = {"requests": 1.0, "input_tokens": float(input_tokens),
                "tokens": float(input_tokens)}
        waits = {n: b.wait_for(take.get(n, 1.0)) for n, b in buckets.items()}
        worst = max(waits, key=lambda n: waits[n], default=None)
        if worst is not None and waits[worst] > 0:
            return Verdict(self.levels(key), retry_after_s=waits[worst], refused_by=worst)
        for name, amount in take.items():
            if name in buckets:
                buckets[name].level -= amount
        return Verdict(self.levels(key))

    def charge_output(self, key: str, output_tokens: int) -> tuple[Level, ...]:
        """Charge a planned answer's tokens; the levels after it."""
        buckets = self._buckets(key)
        for name in ("output_tokens", "tokens"):
            if name in buckets:
                buckets[name].level -= output_tokens
        return self.levels(key)

    def levels(self, key: str) -> tuple[Level, ...]:
        return tuple(Level(name, int(b.capacity), max(0, math.floor(b.level)),
                           (b.capacity - b.level) / b.rate_per_s)
                     for name, b in self.keys.get(key, {}).items())


# ---------------------------------------------------------------------------- wire formats


def anthropic_headers(levels: Iterable[Level]) -> dict[str, str]:
    """``anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,remaining,
    reset}`` (reset: when the bucket is full again, RFC 3339)."""
    now = datetime.now(UTC)
    out: dict[str, str] = {}
    for lv in levels:
        prefix = f"anthropic-ratelimit-{lv.name.replace('_', '-')}-"
        out[prefix + "limit"] = str(lv.limit)
        out[prefix + "remaining"] = str(lv.remaining)
        out[prefix + "reset"] = (now + timedelta(seconds=lv.reset_s)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    return out


def openai_headers(levels: Iterable[Level]) -> dict[str, str]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset: a duration such as
    ``6m0s``, until the bucket is full again). OpenAI has no separate input/output buckets:
    those limits still refuse requests here, but only ``tokens_per_minute`` is reported.

    The shared wire-formats notes are silent here: names and format from OpenAI's rate-limit
    guide ("rate limits in headers"), as captured responses show them
    (``x-ratelimit-reset-requests: 12ms``, ``x-ratelimit-reset-tokens: 6m0s``)."""
    out: dict[str, str] = {}
    for lv in levels:
        if lv.name in OPENAI_LIMITS:
            out[f"x-ratelimit-limit-{lv.name}"] = str(lv.limit)
            out[f"x-ratelimit-remaining-{lv.name}"] = str(lv.remaining)
            out[f"x-ratelimit-reset-{lv.name}"] = go_duration(lv.reset_s)
    return out


def go_duration(seconds: float) -> str:
    """A duration as OpenAI writes it (Go's format): ``12ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, secs = divmod(round(seconds, 3), 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def retry_after_header(seconds: float) -> dict[str, str]:
    """``retry-after`` in whole seconds, rounded up (at least 1), as the APIs send it."""
    return {"retry-after": str(max(1, math.ceil(seconds)))}


def api_key_of(request: Any) -> str:
    """The key whose buckets a request draws from: ``x-api-key``, else the bearer token."""
    headers = request.headers
    key = str(headers.get("x-api-key", "")).strip()
    return key or str(headers.get("authorization", "")).partition(" ")[2].strip()


def aws_key_of(request: Any) -> str:
    """Bedrock's key: the SigV4 access key id and region (``Credential=AKID/date/region/…``;
    the signature changes every request), else the Bedrock API key (bearer token)."""
    auth = str(request.headers.get("authorization", ""))
    scheme, _, rest = auth.partition(" ")
    if scheme == "AWS4-HMAC-SHA256":
        scope = rest.partition("Credential=")[2].split(",")[0].split("/")
        return "/".join(scope[:1] + scope[2:3])
    return rest.strip()
