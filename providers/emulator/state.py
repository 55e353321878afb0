"""The emulator's state: how it paces, what it counts, and the plan drawn for each request.

Every request is planned the moment it is received (``t0``): ``EmulatorState.plan`` makes all
the latency draws then, and every send is scheduled at ``t0 + offset``, never as an
accumulation of relative sleeps. ``sleep_until`` waits for a deadline through the loop's one
pacer (runner/core/timing.py: a timerfd wake-up, no busy-wait by default); ``ServerStats``
holds the server's own lag (actual send − scheduled send) for every event it writes.
One ``EmulatorState`` per app, under ``STATE_KEY``.
"""

from __future__ import annotations

import math
import random
import threading
from collections import Counter
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from latlab.providers.emulator import anthropic_wire as wire
from latlab.providers.emulator.capacity import Capacity
from latlab.providers.emulator.profile import EmulatorProfile
from latlab.providers.emulator.prompt_cache import PromptCache
from latlab.providers.emulator.ratelimit import RateLimiter
from latlab.providers.emulator.replies import reply_tokens
from latlab.runner.core import timing

# Sleep to this far before a deadline, then spin: 0 where the pacer wakes on a timerfd, else
# 1.5 ms to cover asyncio's timer error (runner/core/timing.py default_spin_margin_ns).
SPIN_MARGIN_NS = timing.SPIN_MARGIN_NS
FAULT_DELTAS = 3  # content deltas sent before `stream_error` / `truncate` strike
HTTP_FAULTS: dict[str, int] = {"rate_limited": 429, "overloaded": 529, "server_error": 500}
CACHE_LOST_FAULTS = frozenset({*HTTP_FAULTS, "disconnect", "stall"})  # no first token: no write

JSONDict = dict[str, Any]



@dataclass
class Pacing:
    """How this process's emulator waits for a send instant: sleep to ``spin_margin_ns``
    before it, then spin (yield) the rest. A standalone emulator spins only where the pacer has
    no timerfd (margin 1.5 ms; with one, 0) or when asked (``--spin-margin-us``). One
    embedded in the client's process (``start_emulator``: a thread) never does: its spinning
    holds the GIL and starves the client's thread, whose reads then come late and in clumps
    (measured: 6 streams, profile=fast, TTFT median 64 ms instead of 20; without the spin
    23.5 ms)."""

    spin_margin_ns: int = SPIN_MARGIN_NS


PACING = Pacing()


def sleep_until(deadline_ns: int) -> Coroutine[Any, Any, None]:
    """Wait until the absolute ``perf_counter_ns`` instant, paced as ``PACING`` says."""
    return timing.sleep_until(deadline_ns, PACING.spin_margin_ns)


# ---------------------------------------------------------------------------- lag statistics


class LagHistogram:
    """Bounded log-linear histogram of lags: 1 µs buckets below 2 ms, ~0.1 % above."""

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.total_ns = 0
        self.max_ns = 0

    @staticmethod
    def _bucket(us: int) -> int:
        if us < 2048:
            return us
        shift = us.bit_length() - 11
        return 2048 + (shift - 1) * 1024 + ((us >> shift) - 1024)

    @staticmethod
    def _bucket_mid_us(bucket: int) -> float:
        if bucket < 2048:
            return bucket + 0.5
        shift = (bucket - 2048) // 1024 + 1
        mantissa = (bucket - 2048) % 1024 + 1024
        return float((mantissa << shift) + (1 << shift) / 2)

    def record(self, lag_ns: int) -> None:
        lag_ns = max(lag_ns, 0)
        self.buckets[self._bucket(lag_ns // 1000)] += 1
        self.count += 1
        self.total_ns += lag_ns
        self.max_ns = max(self.max_ns, lag_ns)

    def quantile_ms(self, q: float) -> float:
        """Nearest-rank quantile (bucket midpoint, capped at the exact max), in ms."""
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return min(self._bucket_mid_us(bucket) / 1000, self.max_ns / 1e6)
        return self.max_ns / 1e6

    def summary(self) -> JSONDict:
        if not self.count:
            return {"count": 0, "p50": None, "p99": None, "max": None, "mean": None}
        return {
            "count": self.count,
            "p50": round(self.quantile_ms(0.50), 4),
            "p99": round(self.quantile_ms(0.99), 4),
            "max": round(self.max_ns / 1e6, 4),
            "mean": round(self.total_ns / self.count / 1e6, 4),
        }


class ServerStats:
    """Thread-safe counters and send-lag histograms (overall and per event name)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._lag = LagHistogram()
            self._by_event: dict[str, LagHistogram] = {}
            self._requests = 0
            self._active = 0
            self._faults: Counter[str] = Counter()

    def record(self, event: str, lag_ns: int) -> None:
        with self._lock:
            self._lag.record(lag_ns)
            histogram = self._by_event.get(event)
            if histogram is None:
                histogram = self._by_event[event] = LagHistogram()
            histogram.record(lag_ns)

    def request_started(self) -> None:
        with self._lock:
            self._requests += 1
            self._active += 1

    def request_finished(self) -> None:
        with self._lock:
            self._active -= 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def snapshot(self) -> JSONDict:
        """``{requests, active, faults, lag_ms: {count,p50,p99,max,mean}, lag_ms_by_event}``."""
        with self._lock:
            return {
                "requests": self._requests,
                "active": self._active,
                "faults": dict(self._faults),
                "lag_ms": self._lag.summary(),
                "lag_ms_by_event": {k: h.summary() for k, h in sorted(self._by_event.items())},
            }


# ---------------------------------------------------------------------------- request plans


@dataclass(frozen=True)
class RequestPlan:
    """Everything decided at arrival: identity, size, fault and the absolute send times."""

    request_id: str
    message_id: str
    model: str
    stream: bool
    input_tokens: int
    n_tokens: int
    stop_reason: str
    fault: str | None
    t0_ns: int
    ttfb_at: int
    token_at: tuple[int, ...]
    cache: tuple[int, int, int] = (0, 0, 0)  # cache_write, cache_read, cache_write_1h tokens
    queue_ms: float = 0.0  # time waiting for a capacity slot, before ttfb_at's clock started
    texts: tuple[str, ...] | None = None  # a scripted reply's tokens (profile ``replies``)
    extra_headers: tuple[tuple[str, str], ...] = ()  # rate-limit headers (ratelimit.py)

    def token(self, index: int) -> str:
        return self.texts[index] if self.texts is not None else wire.token_text(index)

    def output_text(self) -> str:
        return "".join(self.token(i) for i in range(self.n_tokens))

    @property
    def deltas_to_send(self) -> int:
        if self.fault in ("stream_error", "truncate"):
            return min(FAULT_DELTAS, self.n_tokens)
        return self.n_tokens

    @property
    def last_sent_at(self) -> int:
        """When the last delta to be sent goes out (TTFB when none is sent)."""
        k = self.deltas_to_send
        return self.token_at[k - 1] if k else self.ttfb_at

    def headers(self) -> dict[str, str]:
        hdrs = {
            "request-id": self.request_id,
            "x-latlab-planned-ttfb-ms": f"{(self.ttfb_at - self.t0_ns) / 1e6:.3f}",
            "x-latlab-planned-ttft-ms": f"{(self.token_at[0] - self.t0_ns) / 1e6:.3f}",
            "x-latlab-planned-total-ms": f"{(self.token_at[-1] - self.t0_ns) / 1e6:.3f}",
        }
        if self.fault:
            hdrs["x-latlab-fault"] = self.fault
        if self.queue_ms:
            hdrs["x-latlab-queue-ms"] = f"{self.queue_ms:.3f}"
        hdrs.update(self.extra_headers)
        return hdrs


class EmulatorState:
    """Per-server state: the profile, the seeded generator and the statistics."""

    def __init__(self, profile: EmulatorProfile) -> None:
        self.profile = profile
        self.rng = random.Random(profile.seed)
        self.stats = ServerStats()
        self.capacity = Capacity(profile.capacity)
        self.cache = PromptCache(profile.prompt_cache)
        self.rate_limits = RateLimiter(profile.rate_limits)  # per API key (ratelimit.py)

    def snapshot(self) -> JSONDict:
        """The statistics plus the capacity pools and the prompt cache."""
        return {**self.stats.snapshot(), "capacity": self.capacity.snapshot(),
                "prompt_cache": self.cache.snapshot()}

    def plan(
        self, body: Mapping[str, Any], t0_ns: int, request_id: str, forced: str | None,
        queue_ns: int = 0,
    ) -> RequestPlan:
        """Draw everything for one request. ``forced``: a fault kind, "none", or None (roll).
        ``queue_ns``: time the request waited for a slot; its clock starts after it.

        Raises KeyError when no model entry matches.
        """
        mp = self.profile.model_profile(str(body["model"]))
        rng = self.rng
        fault = self.profile.faults.draw(rng)
        if forced is not None:
            fault = None if forced == "none" else forced
        ttfb_ms = mp.ttfb_ms.sample(rng)
        start = t0_ns + queue_ns
        cached = self.cache.lookup(str(body["model"]), body, start)
        input_tokens = wire.estimate_input_tokens(body) - cached.read - cached.write
        extra = self.profile.prompt_cache.ttft_extra_ms(input_tokens + cached.write, cached.read)
        ttft_ms = max(mp.ttft_ms.sample(rng) + extra, ttfb_ms)
        max_tokens = int(body["max_tokens"])
        texts = reply_tokens(self.profile.replies, body)
        length = len(texts) if texts is not None else mp.output_tokens
        n = min(max_tokens, length)
        offsets = [ttft_ms]
        for _ in range(n - 1):
            offsets.append(offsets[-1] + mp.itl_ms.sample(rng))
        if fault not in CACHE_LOST_FAULTS:
            self.cache.store(cached, start + round(ttft_ms * 1e6))
        return RequestPlan(
            request_id=request_id,
            message_id=wire.new_message_id(),
            model=str(body["model"]),
            stream=bool(body.get("stream", False)),
            input_tokens=input_tokens,
            n_tokens=n,
            stop_reason="max_tokens" if max_tokens < length else "end_turn",
            fault=fault,
            t0_ns=t0_ns,
            ttfb_at=start + round(ttfb_ms * 1e6),
            token_at=tuple(start + round(off * 1e6) for off in offsets),
            cache=(cached.write, cached.read, cached.write_1h),
            queue_ms=queue_ns / 1e6,
            texts=texts,
        )


STATE_KEY = web.AppKey("latlab_emulator_state", EmulatorState)
