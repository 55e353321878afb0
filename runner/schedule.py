"""Schedule: decide when each planned request is sent, against absolute times.

- Closed loop (``workload.rate: null``): ``concurrency`` workers; each takes the next
  planned request as soon as its previous one ends.
- Open loop (``workload.rate: R``): request *i* is due at ``t0 + offset_i`` (evenly
  spaced at R per second, or Poisson arrivals), independent of responses, with at most
  ``max_in_flight`` in flight. Due times are absolute, so the rate never drifts.

Every request carries its due instant (``scheduled_ns``); the row's ``send_delay_ms``
is the time from due to sent, so client-side queueing (waiting for an in-flight slot,
a late event loop) is visible and never hidden inside the measured latency.
Cells with different workload settings (concurrency, rate) run as consecutive groups.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from runner.plan import PlannedRequest
from runner.timing import now_ns, sleep_until

SendOne = Callable[[PlannedRequest, int, int], Awaitable[None]]


def load_key(request: PlannedRequest) -> tuple[Any, ...]:
    """The settings that decide how a group of requests is paced."""
    w = request.cell.workload
    rate = w.get("rate")
    return (float(rate) if rate else 0.0, int(w["concurrency"]), str(w.get("arrival", "constant")),
            int(w.get("max_in_flight", 256)), int(w.get("seed", 0)))


def load_groups(plan: Sequence[PlannedRequest]) -> list[tuple[tuple[Any, ...],
                                                               list[PlannedRequest]]]:
    """Runs of the plan that share one load setting (stable: keeps the interleaving)."""
    ordered = sorted(plan, key=load_key)
    return [(key, list(group)) for key, group in itertools.groupby(ordered, key=load_key)]


async def run_closed_loop(plan: Sequence[PlannedRequest], concurrency: int,
                          send_one: SendOne) -> None:
    """``concurrency`` workers pulling from one queue in plan order."""
    queue: asyncio.Queue[PlannedRequest] = asyncio.Queue()
    for request in plan:
        queue.put_nowait(request)

    async def worker(worker_id: int) -> None:
        while not queue.empty():
            await send_one(queue.get_nowait(), worker_id, now_ns())

    await asyncio.gather(*(worker(i) for i in range(min(concurrency, len(plan)) or 1)))


def arrival_offsets_ns(count: int, rate: float, arrival: str, seed: int) -> list[int]:
    """Due times after t0: evenly spaced at ``rate``/s, or Poisson (exponential gaps)."""
    if arrival == "constant":
        return [round(i * 1e9 / rate) for i in range(count)]
    rng = random.Random(seed)
    offsets, t = [], 0.0
    for _ in range(count):
        offsets.append(round(t * 1e9))
        t += rng.expovariate(rate)
    return offsets


async def run_open_loop(plan: Sequence[PlannedRequest], rate: float, arrival: str,
                        max_in_flight: int, seed: int, send_one: SendOne) -> None:
    """Fire each request at its absolute due time; at most ``max_in_flight`` at once."""
    slots = asyncio.Semaphore(max_in_flight)
    t0 = now_ns() + 1_000_000  # 1 ms to set up, so the first request is not already late

    async def fire(request: PlannedRequest, due_ns: int) -> None:
        async with slots:
            await send_one(request, 0, due_ns)

    tasks = []
    for request, offset in zip(plan, arrival_offsets_ns(len(plan), rate, arrival, seed),
                               strict=True):
        await sleep_until(t0 + offset)
        tasks.append(asyncio.create_task(fire(request, t0 + offset)))
    await asyncio.gather(*tasks)


async def run_plan(plan: Sequence[PlannedRequest], send_one: SendOne) -> None:
    """Every load group in turn."""
    for (rate, concurrency, arrival, max_in_flight, seed), group in load_groups(plan):
        if rate:
            await run_open_loop(group, rate, arrival, max_in_flight, seed, send_one)
        else:
            await run_closed_loop(group, concurrency, send_one)
