"""How well does the emulator keep its own schedule under concurrency?

Starts ``python -m latlab.providers.emulator`` in a subprocess with a fixed profile, drives N
concurrent streams with an aiohttp client from this process, and reads the server's own
send lag (actual send instant − scheduled instant, every event) from ``/_latlab/stats``.

    python bench/emulator_lag.py [--concurrency 1 64 200] [--rounds 10 2 2]

Columns: lag over all events, then the p99 of the headers event alone (sent at TTFB, right
after the request burst) and of the content deltas alone. The client-side TTFT error columns
are what this (single-threaded) client observed against the planned TTFT; they include the
client's own scheduling delay, so they bound, not measure, the server. One warm-up request
precedes each level and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

import aiohttp
from emulator_process import emulator_process

PROFILE_ARGS = ["--ttfb-ms", "5", "--ttft-ms", "50", "--itl-ms", "10", "--output-tokens", "50"]
TTFT_MS = 50.0
HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}
BODY = {
    "model": "claude-bench",
    "max_tokens": 1000,
    "stream": True,
    "messages": [{"role": "user", "content": "hello"}],
}
DELTA = b"event: content_block_delta"


async def one_stream(session: aiohttp.ClientSession, url: str) -> float:
    """One streamed request; returns the client-observed TTFT error (ms) vs the profile."""
    t_start = time.perf_counter_ns()
    t_first: int | None = None
    buf = b""
    async with session.post(url, json=BODY, headers=HEADERS) as resp:
        resp.raise_for_status()
        async for chunk in resp.content.iter_any():
            if t_first is None:
                buf += chunk
                if DELTA in buf:
                    t_first = time.perf_counter_ns()
    assert t_first is not None, "stream carried no content_block_delta"
    return (t_first - t_start) / 1e6 - TTFT_MS


async def run_level(session: aiohttp.ClientSession, base: str, n: int, rounds: int) -> Any:
    """``rounds`` waves of ``n`` concurrent streams; returns the server stats and TTFT errors."""
    await one_stream(session, f"{base}/v1/messages")  # warm-up, not counted
    async with session.post(f"{base}/_latlab/stats/reset") as resp:
        resp.raise_for_status()
    errors: list[float] = []
    for _ in range(rounds):
        errors += await asyncio.gather(
            *(one_stream(session, f"{base}/v1/messages") for _ in range(n))
        )
    async with session.get(f"{base}/_latlab/stats") as resp:
        stats = await resp.json()
    return stats, errors


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def row(n: int, stats: Any, errors: list[float]) -> str:
    lag = stats["lag_ms"]
    by_event = stats["lag_ms_by_event"]
    head = by_event.get("headers", {}).get("p99", float("nan"))
    delta = by_event.get("content_block_delta", {}).get("p99", float("nan"))
    return (
        f"{n:>5} {stats['requests']:>6} {lag['count']:>7} {lag['p50']:>9.3f} {lag['p99']:>9.3f}"
        f" {lag['max']:>9.3f} {head:>9.3f} {delta:>9.3f}"
        f" {statistics.median(errors):>9.2f} {quantile(errors, 0.99):>9.2f}\n"
    )


async def main_async(levels: list[tuple[int, int]]) -> None:
    out = sys.stdout
    with emulator_process(PROFILE_ARGS) as base:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            out.write(f"emulator {base}  profile: {' '.join(PROFILE_ARGS)}\n")
            out.write("server send lag (ms) = actual send − scheduled, over every SSE event\n")
            out.write(
                f"{'N':>5} {'reqs':>6} {'events':>7} {'lag p50':>9} {'lag p99':>9} {'lag max':>9}"
                f" {'hdr p99':>9} {'tok p99':>9} {'cli ttft':>9} {'cli ttft':>9}\n"
            )
            out.write(f"{'':>71} {'err p50':>9} {'err p99':>9}\n")
            for n, rounds in levels:
                stats, errors = await run_level(session, base, n, rounds)
                out.write(row(n, stats, errors))
                out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64, 200])
    parser.add_argument("--rounds", type=int, nargs="+", default=[10, 2, 2])
    args = parser.parse_args()
    if len(args.rounds) != len(args.concurrency):
        parser.error("--rounds needs one value per --concurrency value")
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_async(list(zip(args.concurrency, args.rounds, strict=True))))
    else:
        uvloop.run(main_async(list(zip(args.concurrency, args.rounds, strict=True))))


if __name__ == "__main__":
    main()
