"""Rate-limit response headers as typed Measurement fields: Anthropic's
``anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,remaining,reset}``
(reset: an RFC 3339 time), OpenAI-compatible ``x-ratelimit-{limit,remaining,reset}-
{requests,tokens}`` (reset: a duration like ``6m0s``) and ``retry-after`` (seconds)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from latlab.runner.core.records import Measurement

ANTHROPIC_LIMITS = {"requests": "requests", "input-tokens": "input_tokens",
                    "output-tokens": "output_tokens", "tokens": "tokens"}
OPENAI_LIMITS = {"requests": "requests", "tokens": "tokens"}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(float(value))
    except ValueError:
        return None


def seconds_until(value: str | None) -> float | None:
    """An RFC 3339 reset time as seconds from now (>= 0); None when absent or unreadable."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def duration_seconds(value: str | None) -> float | None:
    """``6m0s``, ``1.5s``, ``20ms`` or a plain number of seconds; None when unreadable."""
    if not value:
        return None
    parts = _DURATION_PART.findall(value)
    if parts and "".join(n + u for n, u in parts) == value.strip():
        return sum(float(n) * _SECONDS[u] for n, u in parts)
    try:
        return float(value)
    except ValueError:
        return None


def _set(m: Measurement, limit: str, values: tuple[int | None, int | None, float | None]) -> None:
    for suffix, value in zip(("limit", "remaining", "reset_s"), values, strict=True):
        if value is not None:
            setattr(m, f"ratelimit_{limit}_{suffix}", value)


def read_ratelimit_headers(m: Measurement, headers: Mapping[str, str]) -> None:
    """Fill the ratelimit_* and retry_after_s fields from whichever headers are present."""
    for wire, limit in ANTHROPIC_LIMITS.items():
        prefix = f"anthropic-ratelimit-{wire}-"
        _set(m, limit, (_int(headers.get(prefix + "limit")),
                        _int(headers.get(prefix + "remaining")),
                        seconds_until(headers.get(prefix + "reset"))))
    for wire, limit in OPENAI_LIMITS.items():
        _set(m, limit, (_int(headers.get(f"x-ratelimit-limit-{wire}")),
                        _int(headers.get(f"x-ratelimit-remaining-{wire}")),
                        duration_seconds(headers.get(f"x-ratelimit-reset-{wire}"))))
    m.retry_after_s = duration_seconds(headers.get("retry-after"))
