"""Is the client itself the bottleneck? Event-loop lag and CPU of one load process.

A ticker task sleeps 10 ms at a time and records each overshoot (how much later than
asked it woke up): a busy or blocked event loop wakes late, and so does every response
it reads, which would then inflate TTFT and inter-token gaps. CPU is the process (or,
in-process next to the embedded emulator's thread, the loop thread) CPU time over wall
time. A request is *client-late* when it was sent late (``send_delay_ms``) or the loop
lagged while it was in flight, by more than ``workload.max_client_lag_ms``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from array import array
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from latlab.runner.core.timing import now_ns

TICK_S = 0.010
CPU_LIMIT_PCT = 90.0


@dataclass(frozen=True)
class ClientLoad:
    """What one load process measured about itself."""

    loop_lag_p99_ms: float | None = None
    loop_lag_max_ms: float | None = None
    cpu_pct: float | None = None

    @staticmethod
    def worst(loads: list[ClientLoad]) -> ClientLoad:
        """The busiest process decides (max of each figure)."""
        def top(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return max(known) if known else None

        return ClientLoad(top([x.loop_lag_p99_ms for x in loads]),
                          top([x.loop_lag_max_ms for x in loads]),
                          top([x.cpu_pct for x in loads]))


def quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class LagMonitor:
    """Ticks on the running loop; keeps (tick end instant, overshoot ms) for every tick."""

    cpu_clock: Callable[[], float] = time.process_time
    ends_ns: array[int] = field(default_factory=lambda: array("q"))
    overshoot_ms: array[float] = field(default_factory=lambda: array("d"))
    _cpu0: float = 0.0
    _wall0: int = 0
    _cpu_pct: float | None = None

    async def _tick(self) -> None:
        while True:
            start = now_ns()
            await asyncio.sleep(TICK_S)
            end = now_ns()
            self.ends_ns.append(end)
            self.overshoot_ms.append(max(0.0, (end - start) / 1e6 - TICK_S * 1e3))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LagMonitor]:
        """Tick while the body runs; CPU is measured over the same span."""
        self._cpu0, self._wall0 = self.cpu_clock(), now_ns()
        ticker = asyncio.create_task(self._tick())
        try:
            yield self
        finally:
            ticker.cancel()
            wall_s = (now_ns() - self._wall0) / 1e9
            if wall_s > 0:
                self._cpu_pct = 100.0 * (self.cpu_clock() - self._cpu0) / wall_s

    def max_since(self, start_ns: int) -> float:
        """Largest overshoot of the ticks that ended at or after ``start_ns`` (0 if none)."""
        first = bisect.bisect_left(self.ends_ns, start_ns)
        return max(self.overshoot_ms[first:], default=0.0)

    def summary(self) -> ClientLoad:
        lags = list(self.overshoot_ms)
        return ClientLoad(quantile(lags, 0.99), max(lags, default=None), self._cpu_pct)


def is_late(send_delay_ms: float | None, loop_lag_ms: float, limit_ms: float) -> bool:
    """Sent late, or the loop lagged while the request was in flight."""
    return (send_delay_ms or 0.0) > limit_ms or loop_lag_ms > limit_ms


def client_bound(load: ClientLoad, late_send_share: float, limit_ms: float) -> bool:
    """The run's verdict: over 1% of sends late (p99 send delay over the limit), loop lag
    p99 over the limit, or a saturated core."""
    return (late_send_share > 0.01 or (load.loop_lag_p99_ms or 0.0) > limit_ms
            or (load.cpu_pct or 0.0) >= CPU_LIMIT_PCT)
