"""Schedule: send planned requests in order, ``concurrency`` at a time (closed loop).

Each of ``concurrency`` workers takes the next planned request as soon as its
previous one ends. The instant a request is taken is its scheduled time, so the
row's ``send_delay_ms`` shows any client-side wait before the request was sent.
Cells with different ``workload.concurrency`` run as consecutive groups.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence

from runner.plan import PlannedRequest

SendOne = Callable[[PlannedRequest, int], Awaitable[None]]


def concurrency_groups(plan: Sequence[PlannedRequest]) -> list[tuple[int, list[PlannedRequest]]]:
    """Consecutive runs of the plan that share one concurrency level."""
    key = lambda r: int(r.cell.workload["concurrency"])  # noqa: E731
    ordered = sorted(plan, key=key)  # stable: keeps the interleaving inside a level
    return [(level, list(group)) for level, group in itertools.groupby(ordered, key=key)]


async def run_closed_loop(plan: Sequence[PlannedRequest], concurrency: int,
                          send_one: SendOne) -> None:
    """Run ``plan`` with ``concurrency`` workers pulling from one queue in plan order."""
    queue: asyncio.Queue[PlannedRequest] = asyncio.Queue()
    for request in plan:
        queue.put_nowait(request)

    async def worker(worker_id: int) -> None:
        while not queue.empty():
            await send_one(queue.get_nowait(), worker_id)

    await asyncio.gather(*(worker(i) for i in range(min(concurrency, len(plan)) or 1)))


async def run_plan(plan: Sequence[PlannedRequest], send_one: SendOne) -> None:
    """Every concurrency group in turn."""
    for level, group in concurrency_groups(plan):
        await run_closed_loop(group, level, send_one)
