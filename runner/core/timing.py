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
import heapq
import itertools
import os
import time
import weakref
from dataclasses import dataclass, field

from latlab.runner.core.timerfd import TimerFd, open_timerfd, timerfd_available

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

    def ttfb_ms(self) -> float | None:
        return ms_between(self.t_start, self.t_headers)

    def ttft_ms(self) -> float | None:
        return ms_between(self.t_start, self.t_first_token)

    def total_ms(self) -> float | None:
        return ms_between(self.t_start, self.t_done)

    def generation_ms(self) -> float | None:
        return ms_between(self.t_first_token, self.t_last_token)

    def itl_ms(self) -> list[float]:
        """Gaps between successive token arrivals, in ms."""
        arr = self.token_arrivals
        return [(b - a) / 1e6 for a, b in zip(arr, arr[1:], strict=False)]


def output_tps(output_tokens: int | None, generation_ms: float | None) -> float | None:
    """Decode speed: tokens after the first over the generation time (tokens/s)."""
    if not output_tokens or output_tokens < 2 or not generation_ms:
        return None
    return (output_tokens - 1) / (generation_ms / 1000.0)


def default_spin_margin_ns() -> int:
    """How long before a deadline the pacer stops sleeping and spins: ``LATLAB_SPIN_MARGIN_US``
    if set; else 0 where a timerfd wakes the loop on time (runner/core/timerfd.py: 40-300 µs late,
    and a spin at 20k deadlines/s never stops, so a core burns), else 1.5 ms, which covers
    asyncio's timers (uvloop's fire up to ~1.1 ms early, ~0.9 ms late)."""
    env = os.environ.get("LATLAB_SPIN_MARGIN_US")
    if env:
        return round(float(env) * 1000)
    return 0 if timerfd_available() else 1_500_000


SPIN_MARGIN_NS = default_spin_margin_ns()


async def sleep_until(deadline_ns: int, spin_margin_ns: int = SPIN_MARGIN_NS) -> None:
    """Wait until an absolute ``perf_counter_ns`` instant, without asyncio's late wake-ups.

    asyncio rounds timeouts to its clock resolution and fires late (uvloop also up to ~1 ms
    early), and relative sleeps drift; so the running loop's ``Pacer`` sleeps until
    ``spin_margin_ns`` before the deadline, then yield-spins the rest, for every waiter at once.
    """
    if now_ns() >= deadline_ns:
        return
    await loop_pacer().until(deadline_ns, spin_margin_ns)


class Pacer:
    """Wakes every waiter of one event loop at its deadline, from ONE task.

    Why: when each waiting coroutine spun on its own (``await asyncio.sleep(0)`` in a loop),
    every loop iteration stepped all of them: at 200 streams the emulator burnt a core. Here
    waiters park a future in a heap (by deadline); one task sleeps (on a timerfd, else an
    asyncio timer) until the margin before the earliest deadline, yield-spins the margin if
    there is one (0 by default with a timerfd), resolves every future that is due (in
    deadline order) and repeats. With nothing waiting the task ends (no idle CPU). Get the
    loop's pacer with ``loop_pacer()``; deadlines are ``perf_counter_ns`` instants.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._margin_ns = 0  # the largest margin asked for since the heap was last empty
        self._task: asyncio.Task[None] | None = None
        self._alarm: asyncio.Future[None] | None = None  # set while the task sleeps
        self._alarm_at_ns = 0
        self._cancelled = 0
        self._timerfd: TimerFd | None = None

    @property
    def running(self) -> bool:
        """Whether the pacer task exists (it does only while someone waits)."""
        return self._task is not None

    def waiting(self) -> int:
        """Futures in the heap, including cancelled ones not yet dropped."""
        return len(self._heap)

    async def until(self, deadline_ns: int, spin_margin_ns: int = SPIN_MARGIN_NS) -> None:
        """Return at ``deadline_ns`` or just after, never before (unless cancelled)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (deadline_ns, next(self._order), future))
        self._margin_ns = max(self._margin_ns, spin_margin_ns)
        self._wake(deadline_ns - self._margin_ns)
        try:
            await future
        except asyncio.CancelledError:
            self._forget_cancelled()
            raise

    def _wake(self, wake_ns: int) -> None:
        """Start the task, or ring its alarm early if this waiter must be woken sooner."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=PACER_TASK)
        elif self._alarm is not None and wake_ns < self._alarm_at_ns:
            _ring(self._alarm)

    def _forget_cancelled(self) -> None:
        """Count a cancelled waiter; rebuild the heap when they are over half of it."""
        self._cancelled += 1
        if self._cancelled * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].done()]
            heapq.heapify(self._heap)
            self._cancelled = 0

    async def _run(self) -> None:
        """Serve deadlines until none is left, lingering one loop turn first: a released
        waiter (a stream's next token) usually registers again at once."""
        self._open_timerfd()
        try:
            while True:
                await self._serve()
                await asyncio.sleep(0)
                if not self._heap:
                    break
        finally:
            self._task = None
            self._close_timerfd()
            self._fail_orphans()

    async def _serve(self) -> None:
        """Sleep, spin, release; until the heap is empty."""
        while self._drop_done_top():
            deadline_ns = self._heap[0][0]
            now = now_ns()
            if now < deadline_ns - self._margin_ns:
                await self._sleep(deadline_ns - self._margin_ns)
            elif now < deadline_ns:
                await asyncio.sleep(0)
            else:
                self._release(now)

    def _open_timerfd(self) -> None:
        """A kernel timer for this busy period, watched by the loop (None: asyncio timers)."""
        self._timerfd = open_timerfd()
        if self._timerfd is not None:
            asyncio.get_running_loop().add_reader(self._timerfd.fileno(), self._on_timerfd)

    def _close_timerfd(self) -> None:
        if self._timerfd is not None:
            asyncio.get_running_loop().remove_reader(self._timerfd.fileno())
            self._timerfd.close()
            self._timerfd = None

    def _on_timerfd(self) -> None:
        if self._timerfd is not None:
            self._timerfd.drain()
        if self._alarm is not None:
            _ring(self._alarm)

    def _drop_done_top(self) -> bool:
        """Pop cancelled waiters off the top; False once nothing waits."""
        heap = self._heap
        while heap and heap[0][2].done():
            heapq.heappop(heap)
            self._cancelled = max(0, self._cancelled - 1)
        if not heap:
            self._margin_ns = 0
            self._cancelled = 0
        return bool(heap)

    async def _sleep(self, wake_ns: int) -> None:
        """Sleep to ``wake_ns`` on the timerfd (or an asyncio timer); ``_wake`` can ring early."""
        loop = asyncio.get_running_loop()
        self._alarm = alarm = loop.create_future()
        self._alarm_at_ns = wake_ns
        timer = None
        if self._timerfd is not None:
            self._timerfd.arm(wake_ns)
        else:
            timer = loop.call_later((wake_ns - now_ns()) / 1e9, _ring, alarm)
        try:
            await alarm
        finally:
            if timer is not None:
                timer.cancel()
            self._alarm = None

    def _release(self, now: int) -> None:
        """Resolve every future due by ``now``, earliest deadline first."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            future = heapq.heappop(heap)[2]
            if not future.done():
                future.set_result(None)

    def _fail_orphans(self) -> None:
        """The task was cancelled (loop shutting down): cancel whoever still waits on it."""
        for _, _, future in self._heap:
            future.cancel()
        self._heap.clear()


PACER_TASK = "latlab-pacer"
_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pacer] = (
    weakref.WeakKeyDictionary())


def loop_pacer() -> Pacer:
    """The running loop's pacer (one per event loop; created on first use)."""
    loop = asyncio.get_running_loop()
    pacer = _PACERS.get(loop)
    if pacer is None:
        pacer = _PACERS[loop] = Pacer()
    return pacer


def _ring(alarm: asyncio.Future[None]) -> None:
    if not alarm.done():
        alarm.set_result(None)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where available (measured faster and steadier: docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
