"""Schedule: decide when each planned request is sent, against absolute times.

- Closed loop (``workload.rate: null``): ``concurrency`` workers; each takes the next
  planned request as soon as its previous one ends.
- Open loop (``workload.rate: R``): request *i* is due at ``t0 + offset_i`` (evenly
  spaced at R per second, or Poisson arrivals), independent of responses, with at most
  ``max_in_flight`` in flight. Due times are absolute, so the rate never drifts.
- Replay (``workload.kind: replay``): the same open loop, each request due at its trace
  time (``PlannedRequest.offset_ns``, already divided by ``workload.speed``).

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
from dataclasses import dataclass
from typing import Any

from latlab.runner.core.timing import now_ns, sleep_until
from latlab.runner.engine.plan import PlannedRequest

SendOne = Callable[[PlannedRequest, int, int], Awaitable[None]]


def load_key(request: PlannedRequest) -> tuple[Any, ...]:
    """The settings that decide how a group of requests is paced."""
    w = request.cell.workload
    rate = w.get("rate")
    return (float(rate) if rate else 0.0, int(w["concurrency"]), str(w.get("arrival", "constant")),
            int(w.get("max_in_flight", 256)), int(w.get("seed", 0)), request.offset_ns is not None)


def load_groups(plan: Sequence[PlannedRequest]) -> list[tuple[tuple[Any, ...],
                                                               list[PlannedRequest]]]:
    """Runs of the plan that share one load setting (stable: keeps the interleaving)."""
    ordered = sorted(plan, key=load_key)
    return [(key, list(group)) for key, group in itertools.groupby(ordered, key=load_key)]


async def run_closed_loop(plan: Sequence[PlannedRequest], concurrency: int,
                          send_one: SendOne, slots: Sequence[int] | None = None) -> None:
    """``concurrency`` workers pulling from one queue in plan order (``slots``: their ids)."""
    queue: asyncio.Queue[PlannedRequest] = asyncio.Queue()
    for request in plan:
        queue.put_nowait(request)
    ids = list(slots) if slots is not None else list(range(concurrency))

    async def worker(worker_id: int) -> None:
        while not queue.empty():
            await send_one(queue.get_nowait(), worker_id, now_ns())

    await asyncio.gather(*(worker(i) for i in ids[:min(concurrency, len(plan)) or 1]))


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


def open_loop_offsets(group: Sequence[PlannedRequest], key: tuple[Any, ...]
                      ) -> tuple[list[PlannedRequest], list[int]] | None:
    """An open-loop group's requests in send order and their due offsets; None: closed loop.

    Replayed requests carry their own offsets (the trace's times); a rate spaces the rest.
    """
    rate, _, arrival, _, seed, replayed = key
    if replayed:
        ordered = sorted(group, key=lambda r: r.offset_ns or 0)  # stable: keeps interleaving
        return ordered, [r.offset_ns or 0 for r in ordered]
    if rate:
        return list(group), arrival_offsets_ns(len(group), rate, arrival, seed)
    return None


async def run_open_loop(plan: Sequence[PlannedRequest], offsets_ns: Sequence[int],
                        max_in_flight: int, send_one: SendOne) -> None:
    """Fire each request at its absolute due time; at most ``max_in_flight`` at once."""
    t0 = now_ns() + 1_000_000  # 1 ms to set up, so the first request is not already late
    await run_open_loop_at(plan, [t0 + offset for offset in offsets_ns], max_in_flight,
                           send_one)


async def run_open_loop_at(plan: Sequence[PlannedRequest], dues_ns: Sequence[int],
                           max_in_flight: int, send_one: SendOne, worker: int = 0) -> None:
    """Fire request *i* at the absolute instant ``dues_ns[i]``; ``max_in_flight`` at once."""
    slots = asyncio.Semaphore(max_in_flight)

    async def fire(request: PlannedRequest, due_ns: int) -> None:
        async with slots:
            await send_one(request, worker, due_ns)

    tasks = []
    for request, due in zip(plan, dues_ns, strict=True):
        await sleep_until(due)
        tasks.append(asyncio.create_task(fire(request, due)))
    await asyncio.gather(*tasks)


async def run_plan(plan: Sequence[PlannedRequest], send_one: SendOne) -> None:
    """Every load group in turn."""
    for key, group in load_groups(plan):
        paced = open_loop_offsets(group, key)
        if paced is not None:
            await run_open_loop(*paced, key[3], send_one)
        else:
            await run_closed_loop(group, key[1], send_one)


@dataclass(frozen=True)
class Share:
    """One worker process's part of one load group (indices into the whole plan).

    Closed loop: the group's ``concurrency`` client slots are dealt round-robin to the
    processes (slot s runs in process s mod N) and request j goes to slot j mod C's
    process. Open loop: request j goes to process j mod N with its global due offset.
    """

    worker: int
    requests: list[int]
    slots: list[int]
    offsets_ns: list[int] | None = None  # open loop: due instants after the group's t0
    max_in_flight: int = 0


def split_group(plan: Sequence[PlannedRequest], indices: list[int], key: tuple[Any, ...],
                workers: int) -> list[Share]:
    """Deal one load group (``indices`` into the plan, in plan order) to ``workers``."""
    concurrency, max_in_flight = key[1], key[3]
    paced = open_loop_offsets([plan[i] for i in indices], key)
    if paced is not None:
        position = {id(plan[i]): i for i in indices}
        ordered, offsets = [position[id(r)] for r in paced[0]], paced[1]
        bound = -(-max_in_flight // workers)
        return [Share(w, ordered[w::workers], [w], offsets[w::workers], bound)
                for w in range(workers)]
    slots = [[s for s in range(concurrency) if s % workers == w] for w in range(workers)]
    mine = [[i for j, i in enumerate(indices) if (j % concurrency) % workers == w]
            for w in range(workers)]
    return [Share(w, mine[w], slots[w]) for w in range(workers)]


def split_plan(plan: Sequence[PlannedRequest], workers: int) -> list[list[Share]]:
    """Every load group, in run order, dealt to ``workers`` processes."""
    position = {id(r): i for i, r in enumerate(plan)}
    return [split_group(plan, [position[id(r)] for r in group], key, workers)
            for key, group in load_groups(plan)]


async def run_share(share: Share, plan: Sequence[PlannedRequest], t0_ns: int,
                    send_one: SendOne) -> None:
    """Run this process's part of a group; open-loop dues are ``t0_ns`` + offset."""
    requests = [plan[i] for i in share.requests]
    if not requests:
        return
    if share.offsets_ns is not None:
        dues = [t0_ns + offset for offset in share.offsets_ns]
        await run_open_loop_at(requests, dues, share.max_in_flight, send_one, share.worker)
    else:
        await run_closed_loop(requests, len(share.slots), send_one, share.slots)
