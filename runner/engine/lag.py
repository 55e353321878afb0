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
import dataclasses
import os
import time
from array import array
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from latlab.runner.core.timing import now_ns

TICK_S = 0.010
CPU_LIMIT_PCT = 90.0  # the client's loop thread this busy: saturated
BUSY_SHARE = 0.9  # every CPU this busy (other processes + this one): the machine is busy
WAIT_LIMIT_PCT = 1.0  # the loop thread runnable but waiting for a CPU this share of the run
STEAL_LIMIT_PCT = 2.0  # CPU time the hypervisor gave to other guests


@dataclass(frozen=True)
class ClientLoad:
    """What one load process measured about itself and the machine around it."""

    loop_lag_p99_ms: float | None = None
    loop_lag_max_ms: float | None = None
    cpu_pct: float | None = None  # the loop thread (or process), % of one core
    loop_wait_pct: float | None = None  # runnable, waiting for a CPU: % of the run's time
    others_cores: float | None = None  # CPUs busy with other processes (mean over the run)
    steal_pct: float | None = None
    loadavg: float | None = None  # 1-minute load average at the end
    cpus: int | None = None

    @staticmethod
    def worst(loads: list[ClientLoad]) -> ClientLoad:
        """The busiest process decides (max of each figure)."""
        def top(values: list[Any]) -> Any:
            known = [v for v in values if v is not None]
            return max(known) if known else None

        return ClientLoad(*(top([getattr(x, f.name) for x in loads])
                            for f in dataclasses.fields(ClientLoad)))


@dataclass(frozen=True)
class CpuCounters:
    """The kernel's counters at one instant: the machine's busy, total and steal jiffies
    (``/proc/stat``), the calling thread's runqueue wait (``/proc/thread-self/schedstat``),
    this process's CPU seconds and the wall clock. Zeros where /proc is missing."""

    busy: int = 0
    total: int = 0
    steal: int = 0
    wait_ns: int = 0
    process_s: float = 0.0
    wall_ns: int = 0

    @classmethod
    def now(cls) -> CpuCounters:
        busy = total = steal = wait = 0
        with contextlib.suppress(OSError, ValueError, IndexError):
            jiffies = [int(x) for x in _read("/proc/stat").split("\n", 1)[0].split()[1:9]]
            busy, total, steal = sum(jiffies) - jiffies[3] - jiffies[4], sum(jiffies), jiffies[7]
        with contextlib.suppress(OSError, ValueError, IndexError):
            wait = int(_read("/proc/thread-self/schedstat").split()[1])
        return cls(busy, total, steal, wait, time.process_time(), now_ns())


def _read(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


def machine_load(a: CpuCounters, b: CpuCounters, cpu_pct: float | None) -> ClientLoad:
    """The machine between two readings, and this process's part in it."""
    wall_s, ticks = (b.wall_ns - a.wall_ns) / 1e9, b.total - a.total
    if wall_s <= 0 or ticks <= 0:
        return ClientLoad(cpu_pct=cpu_pct)
    cpus = os.cpu_count() or 1
    own_cores = (b.process_s - a.process_s) / wall_s
    machine_cores = (b.busy - a.busy) / ticks * cpus
    loadavg = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        loadavg = float(_read("/proc/loadavg").split()[0])
    return ClientLoad(
        cpu_pct=cpu_pct, loop_wait_pct=100.0 * (b.wait_ns - a.wait_ns) / 1e9 / wall_s,
        others_cores=max(0.0, machine_cores - own_cores),
        steal_pct=100.0 * (b.steal - a.steal) / ticks, loadavg=loadavg,
        cpus=cpus)


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
    _counters: tuple[CpuCounters, CpuCounters] | None = None

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
        start = CpuCounters.now()  # on the loop thread: its runqueue wait
        ticker = asyncio.create_task(self._tick())
        try:
            yield self
        finally:
            ticker.cancel()
            wall_s = (now_ns() - self._wall0) / 1e9
            if wall_s > 0:
                self._cpu_pct = 100.0 * (self.cpu_clock() - self._cpu0) / wall_s
            self._counters = (start, CpuCounters.now())

    def max_since(self, start_ns: int) -> float:
        """Largest overshoot of the ticks that ended at or after ``start_ns`` (0 if none)."""
        first = bisect.bisect_left(self.ends_ns, start_ns)
        return max(self.overshoot_ms[first:], default=0.0)

    def summary(self) -> ClientLoad:
        lags = list(self.overshoot_ms)
        machine = (machine_load(*self._counters, self._cpu_pct) if self._counters
                   else ClientLoad(cpu_pct=self._cpu_pct))
        return dataclasses.replace(machine, loop_lag_p99_ms=quantile(lags, 0.99),
                                   loop_lag_max_ms=max(lags, default=None))


def is_late(send_delay_ms: float | None, loop_lag_ms: float, limit_ms: float) -> bool:
    """Sent late, or the loop lagged while the request was in flight."""
    return (send_delay_ms or 0.0) > limit_ms or loop_lag_ms > limit_ms


def client_bound(load: ClientLoad, late_send_share: float, limit_ms: float) -> bool:
    """The run's verdict: over 1% of sends late (p99 send delay over the limit), loop lag
    p99 over the limit, or a saturated core."""
    return (late_send_share > 0.01 or (load.loop_lag_p99_ms or 0.0) > limit_ms
            or saturated(load))


def saturated(load: ClientLoad) -> bool:
    return (load.cpu_pct or 0.0) >= CPU_LIMIT_PCT


def machine_busy(load: ClientLoad) -> bool:
    """Other processes had the CPUs: the loop waited for one, steal, or every CPU busy."""
    own = (load.cpu_pct or 0.0) / 100.0
    return ((load.loop_wait_pct or 0.0) >= WAIT_LIMIT_PCT
            or (load.steal_pct or 0.0) >= STEAL_LIMIT_PCT
            or (load.others_cores or 0.0) + own >= BUSY_SHARE * (load.cpus or 1))


# Why the client's timings may be late (``diagnose``)
SATURATED, BUSY_MACHINE, BLOCKED = "saturated", "busy machine", "blocked loop"


def diagnose(load: ClientLoad, late_send_share: float, limit_ms: float) -> str | None:
    """None if the client kept time; else which of the three causes: its own CPU near a
    core (SATURATED), other processes on the machine (BUSY_MACHINE), or, with neither, its
    own code holding the loop (BLOCKED)."""
    if not client_bound(load, late_send_share, limit_ms):
        return None
    if saturated(load):
        return SATURATED
    return BUSY_MACHINE if machine_busy(load) else BLOCKED
