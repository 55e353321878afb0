"""The clock and the phase definitions. Every provider times with these.

All instants are ``time.perf_counter_ns()`` (monotonic, ns). Each phase is
defined once here; the README's "Timing phases" table repeats these words.

- ``t_start``       just before the request is handed to the HTTP client
- ``connect_ms``    TCP connect (+ TLS with the aiohttp transport), new connections only
- ``tls_ms``        TLS handshake alone, where the transport reports it separately
- ``ttfb_ms``       t_start → response status line and headers received
- ``ttft_ms``       t_start → arrival of the bytes holding the first content token
                    (non-streaming: equals ``total_ms``)
- ``generation_ms`` first content token → last content token
- ``total_ms``      t_start → terminal event / body fully read (failures: → the failure)
- ``itl_ms``        gaps between successive content-token arrivals
- ``output_tps``    (output_tokens - 1) / generation time, tokens per second
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

now_ns = time.perf_counter_ns


def ms_between(start_ns: int | None, end_ns: int | None) -> float | None:
    """Milliseconds from ``start_ns`` to ``end_ns``; None if either is missing."""
    if start_ns is None or end_ns is None:
        return None
    return (end_ns - start_ns) / 1e6


@dataclass
class StreamClock:
    """Arrival instants of one response, stamped as bytes arrive, before parsing."""

    t_start: int = field(default_factory=now_ns)
    t_headers: int | None = None
    t_first_token: int | None = None
    t_last_token: int | None = None
    t_done: int | None = None
    token_arrivals: list[int] = field(default_factory=list)

    def headers(self) -> None:
        self.t_headers = now_ns()

    def token(self, arrival_ns: int) -> None:
        """Record a content token (one content delta) that arrived at ``arrival_ns``."""
        if self.t_first_token is None:
            self.t_first_token = arrival_ns
        self.t_last_token = arrival_ns
        self.token_arrivals.append(arrival_ns)

    def done(self) -> None:
        self.t_done = now_ns()

    def itl_ms(self) -> list[float]:
        """Gaps between successive token arrivals, in ms."""
        arr = self.token_arrivals
        return [(b - a) / 1e6 for a, b in zip(arr, arr[1:], strict=False)]


def output_tps(output_tokens: int | None, generation_ms: float | None) -> float | None:
    """Decode speed: tokens after the first over the generation time (tokens/s)."""
    if not output_tokens or output_tokens < 2 or not generation_ms:
        return None
    return (output_tokens - 1) / (generation_ms / 1000.0)


SPIN_MARGIN_NS = 1_000_000


async def sleep_until(deadline_ns: int, spin_margin_ns: int = SPIN_MARGIN_NS) -> None:
    """Wait until an absolute ``perf_counter_ns`` instant, without asyncio's late wake-ups.

    asyncio rounds timeouts to its clock resolution and fires late, and relative sleeps
    drift; so sleep until ``spin_margin_ns`` before the deadline, then yield-spin the rest.
    """
    remaining_ns = deadline_ns - now_ns()
    if remaining_ns > spin_margin_ns:
        await asyncio.sleep((remaining_ns - spin_margin_ns) / 1e9)
    while now_ns() < deadline_ns:
        await asyncio.sleep(0)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where available (measured faster and steadier: docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
