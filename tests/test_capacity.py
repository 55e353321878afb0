"""Emulator capacity: slots per model family, a bounded FIFO queue, 429/529 beyond it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from in_process import latlab_here
from result_files import request_rows

from latlab.providers.emulator import start_emulator
from latlab.providers.emulator.capacity import CapacityLimit, CapacityProfile
from latlab.providers.emulator.profile import EmulatorProfile

AUTH = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
TTFT_MS, ITL_MS, TOKENS = 40.0, 20.0, 10  # a request holds its slot ≈ 220 ms


def profile(capacity: dict[str, Any]) -> EmulatorProfile:
    base = EmulatorProfile.fixed(10, TTFT_MS, ITL_MS, TOKENS)
    return EmulatorProfile.from_mapping({
        "name": "capacity", "seed": 0, "faults": {"error_rate": 0.0},
        "models": {"default": {"ttfb_ms": 10, "ttft_ms": TTFT_MS, "itl_ms": ITL_MS,
                               "output_tokens": TOKENS}},
        "capacity": capacity,
    }) if capacity else base


async def one(client: httpx.AsyncClient, model: str = "claude-haiku-4-5") -> tuple[int, float,
                                                                                   dict[str, Any]]:
    """Status, the server's queue wait (ms, header x-latlab-queue-ms) and the JSON body."""
    body = {"model": model, "max_tokens": 100, "stream": False,
            "messages": [{"role": "user", "content": "hi"}]}
    resp = await client.post("/v1/messages", json=body, headers=AUTH)
    return resp.status_code, float(resp.headers.get("x-latlab-queue-ms", 0)), resp.json()


async def burst(base_url: str, n: int, model: str = "claude-haiku-4-5") -> list[Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        return await asyncio.gather(*(one(client, model) for _ in range(n)))


def test_parse_one_limit_for_every_family_and_per_family() -> None:
    single = CapacityProfile.parse({"slots": 4, "max_queue": 2})
    assert single.limits == {"default": CapacityLimit(4, 2, "overloaded")}
    per = CapacityProfile.parse({"haiku": {"slots": 8}, "default": {"slots": 1,
                                                                    "reject": "rate_limited"}})
    assert per.limits["haiku"].slots == 8 and per.limits["default"].reject == "rate_limited"
    assert CapacityProfile.parse(None).limits == {}


@pytest.mark.parametrize(("value", "message"), [
    ({"slots": 0}, "slots must be >= 1"),
    ({"slots": 2, "queue": 3}, "unknown keys ['queue']"),
    ({"slots": 2, "reject": "teapot"}, "reject must be one of"),
    ({"haiku": 3}, "capacity.haiku: expected {slots"),
])
def test_bad_capacity_is_a_clear_error(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        CapacityProfile.parse(value)


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_requests_queue_once_the_slots_are_full() -> None:
    """2 slots, 4 at once: two are served at once, two wait about one whole response."""
    with start_emulator(profile({"slots": 2, "max_queue": 4})) as emu:
        start = time.perf_counter()
        results = asyncio.run(burst(emu.base_url, 4))
        elapsed_ms = (time.perf_counter() - start) * 1000
        stats = emu.stats()["capacity"]
    waits = sorted(queue_ms for _, queue_ms, _ in results)
    assert all(status == 200 for status, _, _ in results)
    hold = TTFT_MS + (TOKENS - 1) * ITL_MS
    assert waits[:2] == [0.0, 0.0]  # the first two: no wait
    assert waits[2] > hold / 2  # the next two: until a slot is free (≈ one response)
    assert elapsed_ms > 2 * hold  # two rounds, one after the other
    assert stats["queued"] == 2 and stats["rejected"] == 0


def test_beyond_the_queue_requests_are_rejected_with_529() -> None:
    with start_emulator(profile({"slots": 1, "max_queue": 1})) as emu:
        results = asyncio.run(burst(emu.base_url, 4))
        assert emu.stats()["capacity"]["rejected"] == 2
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200, 200, 529, 529]
    rejected = [body for status, _, body in results if status == 529]
    assert rejected[0]["error"]["type"] == "overloaded_error"


def test_rate_limited_rejection_and_families_have_their_own_pools() -> None:
    capacity = {"sonnet": {"slots": 1, "max_queue": 0, "reject": "rate_limited"},
                "default": {"slots": 8}}
    with start_emulator(profile(capacity)) as emu:
        sonnet = asyncio.run(burst(emu.base_url, 3, "claude-sonnet-4-5"))
        haiku = asyncio.run(burst(emu.base_url, 3, "claude-haiku-4-5"))
    assert sorted(status for status, _, _ in sonnet) == [200, 429, 429]
    assert all(status == 200 for status, _, _ in haiku)


def test_unlimited_by_default() -> None:
    with start_emulator(profile({})) as emu:
        results = asyncio.run(burst(emu.base_url, 6))
        assert emu.stats()["capacity"] == {"queued": 0, "rejected": 0, "active": {},
                                           "waiting": {}}
    assert all(status == 200 for status, _, _ in results)


@pytest.mark.parametrize(("provider", "model"), [
    ("anthropic", "haiku-4-5"), ("bedrock", "haiku-4-5"), ("vertex", "haiku-4-5"),
    ("openai_compat", "haiku-4-5")])
def test_every_route_shares_the_capacity_pools(tmp_path: Path, provider: str, model: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """One slot and no queue, six at once: one is served, the rest are typed overloaded rows
    (Anthropic/Vertex 529, Bedrock ServiceUnavailableException, OpenAI-compatible 503)."""
    done = latlab_here(["run", f"provider={provider}", f"model={model}", "emulate=true",
                        "profile=fast", "workload.warmup=0", "workload.iterations=6",
                        "workload.concurrency=6", "++profile.capacity={slots:1,max_queue:0}"],
                       capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    errors = [r["error_type"] for r in rows if r["error_type"] is not None]
    assert len(rows) == 6 and len(errors) < 6 and errors and set(errors) == {"overloaded"}
