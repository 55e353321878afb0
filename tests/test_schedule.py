"""Closed and open loop pacing against absolute times; client queueing shows as send delay."""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import pytest

from latlab.runner.core.timing import now_ns
from latlab.runner.engine.plan import Cell, PlannedRequest, plan_requests
from latlab.runner.engine.schedule import arrival_offsets_ns, run_plan


def cell(**workload: Any) -> Cell:
    base = {"warmup": 0, "iterations": 40, "concurrency": 1, "stream": True, "seed": 3}
    cfg = {"provider": {"name": "p"}, "model": {"name": "m"}, "prompt": {"name": "x"},
           "guardrail": {"name": "none"}, "workload": {**base, **workload}}
    return Cell("c", cfg)


def run(plan: list[PlannedRequest], service_s: float) -> list[tuple[int, int, int]]:
    """(due, sent, done) instants of each request, with a fixed service time."""
    seen: list[tuple[int, int, int]] = []

    async def send_one(request: PlannedRequest, worker: int, due_ns: int) -> None:
        sent = now_ns()
        await asyncio.sleep(service_s)
        seen.append((due_ns, sent, now_ns()))

    asyncio.run(run_plan(plan, send_one))
    return sorted(seen)


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_open_loop_keeps_its_rate_independent_of_responses() -> None:
    plan = plan_requests([cell(rate=200.0, max_in_flight=100)], "interleaved")
    seen = run(plan, service_s=0.05)  # each response takes 10 inter-arrival times
    dues = [d for d, _, _ in seen]
    span_s = (dues[-1] - dues[0]) / 1e9
    assert (len(dues) - 1) / span_s == pytest.approx(200.0, rel=0.01)
    delays_ms = [(s - d) / 1e6 for d, s, _ in seen]
    assert statistics.median(delays_ms) < 1.0
    sent_span_s = (seen[-1][1] - seen[0][1]) / 1e9
    assert (len(seen) - 1) / sent_span_s == pytest.approx(200.0, rel=0.05)


def test_in_flight_bound_shows_up_as_send_delay() -> None:
    plan = plan_requests([cell(rate=200.0, max_in_flight=2)], "interleaved")
    seen = run(plan, service_s=0.05)  # capacity 40/s < 200/s: requests must queue
    delays_ms = [(s - d) / 1e6 for d, s, _ in seen]
    assert max(delays_ms) > 500  # the queue grows; the delay is recorded, not hidden
    assert delays_ms[-1] > delays_ms[0]


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_closed_loop_sends_the_next_request_when_the_last_ends() -> None:
    plan = plan_requests([cell(concurrency=2, iterations=6)], "interleaved")
    seen = run(plan, service_s=0.02)
    assert len(seen) == 6
    assert all((s - d) / 1e6 < 1.0 for d, s, _ in seen)
    total_s = (max(e for _, _, e in seen) - min(s for _, s, _ in seen)) / 1e9
    assert total_s == pytest.approx(0.06, abs=0.02)  # 6 requests, 2 at a time, 20 ms each


def test_poisson_arrivals_have_the_target_mean_rate_and_are_seeded() -> None:
    offsets = arrival_offsets_ns(5000, 100.0, "poisson", seed=1)
    assert offsets == arrival_offsets_ns(5000, 100.0, "poisson", seed=1)
    gaps = [(b - a) / 1e9 for a, b in zip(offsets, offsets[1:], strict=False)]
    assert statistics.mean(gaps) == pytest.approx(0.01, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(0.01, rel=0.1)  # exponential: sd = mean
