"""The pacer (runner/core/timing.py): one spinning task per loop wakes every waiter, never early."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from latlab.runner.core import timing
from latlab.runner.core.timerfd import timerfd_available
from latlab.runner.core.timing import (
    PACER_TASK,
    Pacer,
    loop_pacer,
    new_event_loop,
    now_ns,
    sleep_until,
)

MS = 1_000_000


@pytest.fixture(params=["timerfd", "asyncio-timers"])
def wake(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the pacer woken by a timerfd, then by asyncio's own timers."""
    if request.param == "asyncio-timers":
        monkeypatch.setattr(timing, "open_timerfd", lambda: None)
    elif not timerfd_available():
        pytest.skip("no timerfd here (not Linux)")
    return str(request.param)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """On uvloop, as the emulator and the workers run (its timers may fire ~1 ms early)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


def pacer_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == PACER_TASK]


async def wake_times(deadlines: list[int], margin_ns: int) -> list[tuple[int, int]]:
    """(deadline, woken) of one waiter per deadline, in the order they woke."""
    woken: list[tuple[int, int]] = []

    async def waiter(deadline: int) -> None:
        await sleep_until(deadline, margin_ns)
        woken.append((deadline, now_ns()))

    await asyncio.gather(*(waiter(d) for d in deadlines))
    return woken


@pytest.mark.parametrize("margin_ns", [0, MS])
def test_waiters_wake_in_deadline_order_and_never_early(margin_ns: int, wake: str) -> None:
    async def scenario() -> list[tuple[int, int]]:
        t0 = now_ns() + 50 * MS  # every waiter is registered well before its deadline
        deadlines = [t0 + random.randrange(0, 30 * MS) for _ in range(300)]
        deadlines += deadlines[:20]  # equal deadlines too
        return await wake_times(deadlines, margin_ns)

    woken = run(scenario())
    assert len(woken) == 320
    assert all(at >= deadline for deadline, at in woken)
    assert [d for d, _ in woken] == sorted(d for d, _ in woken)


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_a_later_waiter_with_an_earlier_deadline_interrupts_the_pacers_sleep(wake: str) -> None:
    async def scenario() -> list[tuple[int, int]]:
        far = asyncio.create_task(wake_times([now_ns() + 200 * MS], MS))
        await asyncio.sleep(0.01)  # the pacer now sleeps towards the far deadline
        near = await wake_times([now_ns() + 10 * MS], MS)
        await far
        return near

    [(deadline, at)] = run(scenario())
    assert 0 <= at - deadline < 5 * MS  # not held until the far deadline's wake-up


@pytest.mark.timing  # 20 ms must pass well before a 100 ms deadline: run alone (conftest.py)
def test_many_waiters_share_one_pacer_task() -> None:
    async def scenario() -> tuple[int, int, int]:
        base = now_ns() + 100 * MS
        tasks = [asyncio.create_task(sleep_until(base + i * 10_000)) for i in range(200)]
        await asyncio.sleep(0.02)  # all registered, none due yet
        spinning, waiting = len(pacer_tasks()), loop_pacer().waiting()
        await asyncio.gather(*tasks)
        await asyncio.sleep(0)
        return spinning, waiting, len(pacer_tasks())

    spinning, waiting, after = run(scenario())
    assert (spinning, waiting, after) == (1, 200, 0)


async def loop_turns() -> int:
    """How often the loop turns (one sleep(0) of this task each) per ms: the best of 5 ms,
    so that a moment of the machine's other load does not count."""
    best = 0
    for _ in range(5):
        turns, end = 0, now_ns() + MS
        while now_ns() < end:
            turns += 1
            await asyncio.sleep(0)
        best = max(best, turns)
    return best


@pytest.mark.timing  # loop turns per ms: run alone (conftest.py)
def test_waiters_inside_the_spin_margin_do_not_each_spin() -> None:
    """With one spinner per waiter, every loop turn stepped all 200 of them (measured: the
    loop turned ~100x slower); with the pacer each turn steps one spinner (~2x slower)."""

    async def scenario() -> tuple[int, int]:
        alone = await loop_turns()
        deadline = now_ns() + 30 * MS
        waiters = [asyncio.create_task(sleep_until(deadline, 30 * MS)) for _ in range(200)]
        await asyncio.sleep(0)
        crowded = await loop_turns()  # all 200 inside their 30 ms margin
        await asyncio.gather(*waiters)
        return alone, crowded

    alone, crowded = run(scenario())
    assert crowded > alone / 10, (alone, crowded)


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_cancelled_waiters_are_dropped_and_do_not_disturb_the_others(wake: str) -> None:
    async def scenario() -> tuple[list[tuple[int, int]], int, bool]:
        t0 = now_ns()
        doomed = [asyncio.create_task(sleep_until(t0 + 2_000 * MS)) for _ in range(50)]
        kept = asyncio.create_task(wake_times([t0 + 20 * MS, t0 + 30 * MS], MS))
        await asyncio.sleep(0.005)
        for task in doomed:
            task.cancel()
        woken = await kept
        await asyncio.sleep(0)
        pacer = loop_pacer()
        return woken, pacer.waiting(), pacer.running

    woken, left, running = run(scenario())
    assert [at >= d for d, at in woken] == [True, True]
    assert all(at - d < 5 * MS for d, at in woken)
    assert (left, running) == (0, False)  # no leaked futures, no pacer task left behind


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_a_cancelled_waiter_at_the_top_of_the_heap_lets_the_next_one_through(wake: str) -> None:
    async def scenario() -> tuple[int, int]:
        t0 = now_ns()
        first = asyncio.create_task(sleep_until(t0 + 10 * MS))
        second = asyncio.create_task(wake_times([t0 + 20 * MS], MS))
        await asyncio.sleep(0.009)
        first.cancel()
        [(deadline, at)] = await second
        with pytest.raises(asyncio.CancelledError):
            await first
        return deadline, at

    deadline, at = run(scenario())
    assert 0 <= at - deadline < 5 * MS


def test_an_idle_pacer_uses_no_cpu(wake: str) -> None:
    async def scenario() -> tuple[float, bool]:
        await sleep_until(now_ns() + 5 * MS)  # the pacer ran once, and has ended
        cpu0 = time.process_time()
        await asyncio.sleep(0.2)
        return time.process_time() - cpu0, loop_pacer().running

    cpu_s, running = run(scenario())
    assert not running
    assert cpu_s < 0.02  # a spinning loop would burn ~0.2 s


@pytest.mark.parametrize("margin_ns", [0, MS])
def test_a_far_deadline_sleeps_instead_of_spinning(margin_ns: int, wake: str) -> None:
    async def scenario() -> float:
        cpu0 = time.process_time()
        await sleep_until(now_ns() + 200 * MS, margin_ns)
        return time.process_time() - cpu0

    assert run(scenario()) < 0.03  # spins at most the margin (+ an early timer), not 200 ms


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_with_a_timerfd_the_default_margin_is_zero_and_nothing_spins() -> None:
    """50 waiters 1 ms apart: with the timerfd the pacer sleeps between all of them."""
    if not timerfd_available():
        pytest.skip("no timerfd here (not Linux)")

    async def scenario() -> tuple[float, list[tuple[int, int]]]:
        cpu0 = time.process_time()
        t0 = now_ns() + 20 * MS
        woken = await wake_times([t0 + i * MS for i in range(50)], timing.SPIN_MARGIN_NS)
        return time.process_time() - cpu0, woken

    cpu_s, woken = run(scenario())
    assert timing.SPIN_MARGIN_NS == 0
    assert all(at >= d for d, at in woken)
    assert statistics.median(at - d for d, at in woken) < MS  # on time, to well under 1 ms
    assert cpu_s < 0.035  # spinning through the 70 ms would use all of it


@pytest.mark.timing  # 5 ms must pass well before a 20 ms deadline: run alone (conftest.py)
def test_the_pacer_closes_its_timerfd_when_idle() -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def scenario() -> tuple[int, int]:
        before = open_fds()
        waiter = asyncio.create_task(sleep_until(now_ns() + 20 * MS))
        await asyncio.sleep(0.005)
        busy = open_fds()
        await waiter
        await asyncio.sleep(0.001)
        return busy - before, open_fds() - before

    if not timerfd_available():
        pytest.skip("no timerfd here (not Linux)")
    assert run(scenario()) == (1, 0)


def test_each_loop_has_its_own_pacer() -> None:
    async def mine() -> Pacer:
        await sleep_until(now_ns() + MS)
        return loop_pacer()

    assert run(mine()) is not run(mine())


def test_a_passed_deadline_returns_without_waiting() -> None:
    async def scenario() -> bool:
        await sleep_until(now_ns() - MS)
        return loop_pacer().running

    assert run(scenario()) is False


def test_cancelling_the_pacer_task_cancels_its_waiters() -> None:
    """A loop shutting down cancels every task; the waiters must not hang on a dead pacer."""

    async def scenario() -> tuple[bool, int]:
        waiter = asyncio.create_task(sleep_until(now_ns() + 1_000 * MS))
        await asyncio.sleep(0.01)
        pacer_tasks()[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiter, 1.0)
        return loop_pacer().running, loop_pacer().waiting()

    assert run(scenario()) == (False, 0)
