"""Timing fidelity: latlab's measured TTFT and inter-token gaps against a known emulator schedule.

Starts ``python -m latlab.providers.emulator`` in its own process with a fixed profile (TTFB 5 ms,
TTFT 150 ms, one token every 10 ms, 50 tokens, sigma 0) and drives it with latlab's real
provider (``AnthropicProvider`` over ``make_http_client``) in this process, once per client
configuration and concurrency level:

    python bench/fidelity.py [--levels 1,16,64,256] [--rounds 2]
        [--configs aiohttp-uvloop,aiohttp-asyncio,httpcore-uvloop,floor-uvloop] [--json FILE]

A level is a closed loop: ``N`` workers start together, each sending ``max(rounds, ceil(20/N))``
requests one after another. Before it, one untimed warm-up request per worker opens the pool's
connections; the emulator's statistics are then reset, so its send lag covers the level alone.
The configurations of a level run back to back (order rotated per level) so machine noise hits
them alike.

Error = measured − true. True TTFT = 150 ms + the emulator's own send lag (the level's median
lag over its content deltas, from ``/_latlab/stats``; reported beside with its p99). True gap =
10 ms: gaps far below it mean tokens arrived in clumps. ``tok/s`` is every content token the
level received over its wall time; ``cpu%`` is this (client) process's CPU time over that wall
time (100 % = one core).

``floor-uvloop`` is not latlab: a reference client with no HTTP library (prebuilt request
bytes written straight to the socket, arrivals stamped in ``data_received``). Its error is
what the emulator's request intake (its clock starts when its handler runs, so a burst of N
requests queues before any clock starts), the kernel and the loop cost on their own; a
latlab config's error minus the floor's, at the same level, is what latlab's client adds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from emulator_process import ROOT, emulator_process

sys.path.insert(0, str(ROOT))

from latlab.providers.anthropic import AnthropicProvider  # noqa: E402
from latlab.providers.http import make_http_client  # noqa: E402
from latlab.runner.core.protocol import RequestSpec  # noqa: E402
from latlab.runner.core.records import Measurement  # noqa: E402
from latlab.runner.core.timing import output_tps  # noqa: E402

TTFB_MS, TTFT_MS, ITL_MS, TOKENS = 5.0, 150.0, 10.0, 50
PROFILE_ARGS = ["--ttfb-ms", f"{TTFB_MS:g}", "--ttft-ms", f"{TTFT_MS:g}",
                "--itl-ms", f"{ITL_MS:g}", "--output-tokens", str(TOKENS)]
MIN_REQUESTS = 20  # per level
DEFAULT_CONFIG, GOAL_LEVEL, GOAL_P50_MS, GOAL_P99_MS = "aiohttp-uvloop", 64, 0.5, 2.0
DELTA_MARK = b"event: content_block_delta"
CHUNKED_END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked body
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
Send = Callable[[], Awaitable[Measurement]]


def uvloop_loop() -> asyncio.AbstractEventLoop:
    import uvloop

    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


CONFIGS: dict[str, tuple[str, LoopFactory]] = {
    "aiohttp-uvloop": ("aiohttp", uvloop_loop),
    "aiohttp-asyncio": ("aiohttp", asyncio.new_event_loop),
    "httpcore-uvloop": ("httpcore", uvloop_loop),
    "floor-uvloop": ("floor", uvloop_loop),
}


@dataclass
class LevelResult:
    """One configuration at one concurrency level (times in ms)."""

    config: str
    concurrency: int
    requests: int
    errors: int
    new_connections: int
    server_lag_p50: float
    server_lag_p99: float
    ttft_err_p50: float
    ttft_err_p99: float
    gap_p1: float
    gap_p50: float
    gap_p99: float
    tokens_per_s: float
    stream_tps_p50: float
    client_cpu_pct: float
    wall_s: float


def spec(max_tokens: int = 1000) -> RequestSpec:
    return RequestSpec(model_id="claude-bench", max_tokens=max_tokens, stream=True,
                       messages=[{"role": "user", "content": "hello"}], timeout_s=60.0)


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def closed_loop(send: Send, n: int,
                      per_worker: int) -> tuple[list[Measurement], float, float]:
    """``n`` workers start together, each sending ``per_worker`` requests in sequence."""

    async def worker() -> list[Measurement]:
        return [await send() for _ in range(per_worker)]

    cpu0, wall0 = time.process_time(), time.perf_counter()
    batches = await asyncio.gather(*(worker() for _ in range(n)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return [m for batch in batches for m in batch], wall, cpu


async def server_stats(client: httpx.AsyncClient, base: str, reset: bool = False) -> Any:
    if reset:
        (await client.post(f"{base}/_latlab/stats/reset")).raise_for_status()
        return None
    resp = await client.get(f"{base}/_latlab/stats")
    resp.raise_for_status()
    return resp.json()


async def run_latlab(config: str, base: str, n: int, per_worker: int) -> LevelResult:
    """latlab's provider on the config's transport: warm ``n`` connections, then the loop."""
    transport = CONFIGS[config][0]
    provider = AnthropicProvider(make_http_client(transport, 0, True), base, "bench", transport)
    try:
        await asyncio.gather(*(provider.send(spec(max_tokens=1)) for _ in range(n)))
        await server_stats(provider.client, base, reset=True)
        rows, wall, cpu = await closed_loop(lambda: provider.send(spec()), n, per_worker)
        stats = await server_stats(provider.client, base)
    finally:
        await provider.aclose()
    return summarize(config, n, rows, wall, cpu, stats)


class FloorProtocol(asyncio.Protocol):
    """The least a Python client can do: prebuilt request bytes, stamps in data_received."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.scan = 0
        self.arrivals: list[int] = []
        self.done: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        self.buf += data
        while (i := self.buf.find(DELTA_MARK, self.scan)) >= 0:
            self.arrivals.append(now)
            self.scan = i + len(DELTA_MARK)
        if self.done is not None and not self.done.done() and self.buf.endswith(CHUNKED_END):
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("emulator closed the connection"))

    async def exchange(self, request: bytes) -> Measurement:
        assert self.transport is not None
        self.buf.clear()
        self.scan, self.arrivals = 0, []
        self.done = asyncio.get_running_loop().create_future()
        t_start = time.perf_counter_ns()
        self.transport.write(request)
        async with asyncio.timeout(60):
            await self.done
        return floor_measurement(t_start, self.arrivals, bytes(self.buf[:12]))


def floor_measurement(t_start: int, arrivals: list[int], status_line: bytes) -> Measurement:
    m = Measurement()
    if not status_line.startswith(b"HTTP/1.1 200") or not arrivals:
        m.error_type = "floor_client"
        return m
    m.ttft_ms = (arrivals[0] - t_start) / 1e6
    m.itl_ms = [(b - a) / 1e6 for a, b in zip(arrivals, arrivals[1:], strict=False)]
    m.output_tps = output_tps(len(arrivals), (arrivals[-1] - arrivals[0]) / 1e6)
    return m


def raw_request(base: str, max_tokens: int) -> bytes:
    body = json.dumps({"model": "claude-bench", "max_tokens": max_tokens, "stream": True,
                       "messages": [{"role": "user", "content": "hello"}]}).encode()
    head = (f"POST /v1/messages HTTP/1.1\r\nHost: {urlsplit(base).netloc}\r\n"
            "x-api-key: bench\r\nanthropic-version: 2023-06-01\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def run_floor(config: str, base: str, n: int, per_worker: int) -> LevelResult:
    """The reference client on ``n`` warm connections: what the emulator + OS alone cost."""
    loop, url = asyncio.get_running_loop(), urlsplit(base)
    conns: list[FloorProtocol] = []
    async with httpx.AsyncClient() as control:
        try:
            for _ in range(n):
                _, proto = await loop.create_connection(FloorProtocol, url.hostname, url.port)
                conns.append(proto)
            warm, request = raw_request(base, 1), raw_request(base, 1000)
            await asyncio.gather(*(c.exchange(warm) for c in conns))
            await server_stats(control, base, reset=True)
            free = list(conns)
            rows, wall, cpu = await closed_loop(lambda: floor_send(free, request), n, per_worker)
            stats = await server_stats(control, base)
        finally:
            for proto in conns:
                if proto.transport is not None:
                    proto.transport.close()
    return summarize(config, n, rows, wall, cpu, stats)


async def floor_send(free: list[FloorProtocol], request: bytes) -> Measurement:
    """One request on an idle connection of the pool ``free`` (one per worker)."""
    proto = free.pop()
    try:
        return await proto.exchange(request)
    finally:
        free.append(proto)


async def run_config(config: str, base: str, n: int, per_worker: int) -> LevelResult:
    if CONFIGS[config][0] == "floor":
        return await run_floor(config, base, n, per_worker)
    return await run_latlab(config, base, n, per_worker)


def summarize(config: str, n: int, rows: list[Measurement], wall: float, cpu: float,
              stats: dict[str, Any]) -> LevelResult:
    ok = [m for m in rows if m.ok and m.ttft_ms is not None]
    lag = stats["lag_ms_by_event"].get("content_block_delta", {})
    lag_p50, lag_p99 = float(lag.get("p50") or 0.0), float(lag.get("p99") or 0.0)
    errs = [(m.ttft_ms or 0.0) - TTFT_MS - lag_p50 for m in ok]
    gaps = [g for m in ok for g in m.itl_ms]
    tps = [m.output_tps for m in ok if m.output_tps is not None]
    tokens = sum(len(m.itl_ms) + 1 for m in ok)
    return LevelResult(
        config=config, concurrency=n, requests=len(rows), errors=len(rows) - len(ok),
        new_connections=sum(bool(m.new_connection) for m in rows),
        server_lag_p50=lag_p50, server_lag_p99=lag_p99,
        ttft_err_p50=quantile(errs, 0.50), ttft_err_p99=quantile(errs, 0.99),
        gap_p1=quantile(gaps, 0.01), gap_p50=quantile(gaps, 0.50), gap_p99=quantile(gaps, 0.99),
        tokens_per_s=tokens / wall, stream_tps_p50=statistics.median(tps) if tps else math.nan,
        client_cpu_pct=100.0 * cpu / wall, wall_s=wall,
    )


HEADER = (
    f"{'config':<16} {'N':>4} {'reqs':>5} {'err':>3} {'new':>3} {'lag50':>6} {'lag99':>6}"
    f" {'ttft50':>7} {'ttft99':>7} {'gap1':>6} {'gap50':>6} {'gap99':>6}"
    f" {'tok/s':>7} {'str t/s':>7} {'cpu%':>5}\n"
)


def row(r: LevelResult) -> str:
    return (
        f"{r.config:<16} {r.concurrency:>4} {r.requests:>5} {r.errors:>3} {r.new_connections:>3}"
        f" {r.server_lag_p50:>6.3f} {r.server_lag_p99:>6.3f}"
        f" {r.ttft_err_p50:>+7.2f} {r.ttft_err_p99:>+7.2f}"
        f" {r.gap_p1:>6.2f} {r.gap_p50:>6.2f} {r.gap_p99:>6.2f}"
        f" {r.tokens_per_s:>7.0f} {r.stream_tps_p50:>7.1f} {r.client_cpu_pct:>5.0f}\n"
    )


def legend(base: str) -> str:
    return (
        f"emulator {base} (own process)  profile: {' '.join(PROFILE_ARGS)}  sigma 0\n"
        "lag50/lag99: emulator send lag over content deltas (ms); true TTFT = 150 + lag50\n"
        "ttft50/ttft99: TTFT error = measured - true (ms); gap1/50/99: inter-token gaps"
        " (true 10 ms)\n"
        "tok/s: content tokens received per wall second; str t/s: median per-stream"
        " output_tps (true 100); cpu%: client process CPU / wall\n"
        "err: failed requests; new: requests that opened a connection (0 = pool reused)\n"
    )


def excess_table(results: list[LevelResult]) -> str:
    """Median and p99 TTFT error of each latlab config minus the floor's at the same level."""
    floor = {r.concurrency: r for r in results if CONFIGS[r.config][0] == "floor"}
    lines = ["\nclient's own TTFT error = config - floor-uvloop at the same level"
             " (ms; p99 column: difference of the p99s)\n"]
    for r in results:
        f = floor.get(r.concurrency)
        if f is None or r is f:
            continue
        lines.append(f"{r.config:<16} {r.concurrency:>4} {r.ttft_err_p50 - f.ttft_err_p50:>+7.2f}"
                     f" {r.ttft_err_p99 - f.ttft_err_p99:>+7.2f}\n")
    return "".join(lines) if len(lines) > 1 else ""


def verdict(p50: float, p99: float) -> str:
    ok50, ok99 = p50 <= GOAL_P50_MS, p99 <= GOAL_P99_MS
    return (f"median {p50:+.2f} ms (goal <= {GOAL_P50_MS}) {'MET' if ok50 else 'MISSED'},"
            f" p99 {p99:+.2f} ms (goal <= {GOAL_P99_MS}) {'MET' if ok99 else 'MISSED'}")


def goal_lines(results: list[LevelResult]) -> str:
    """The issue's goal, for the default config at 64 streams: as defined, and over the floor."""
    by = {(r.config, r.concurrency): r for r in results}
    r, f = by.get((DEFAULT_CONFIG, GOAL_LEVEL)), by.get(("floor-uvloop", GOAL_LEVEL))
    if r is None:
        return ""
    text = f"\ngoal at {GOAL_LEVEL} streams, {DEFAULT_CONFIG}: "
    text += verdict(r.ttft_err_p50, r.ttft_err_p99) + "\n"
    if f is not None:
        own = verdict(r.ttft_err_p50 - f.ttft_err_p50, r.ttft_err_p99 - f.ttft_err_p99)
        text += f"  same, over the floor: {own}\n"
    return text


def run_all(levels: list[int], rounds: int, configs: list[str]) -> list[LevelResult]:
    out = sys.stdout
    results: list[LevelResult] = []
    with emulator_process(["--profile", "default", *PROFILE_ARGS]) as base:
        out.write(legend(base) + HEADER)
        out.flush()
        for i, n in enumerate(levels):
            per_worker = max(rounds, math.ceil(MIN_REQUESTS / n))
            shift = i % len(configs)
            for config in configs[shift:] + configs[:shift]:
                with asyncio.Runner(loop_factory=CONFIGS[config][1]) as runner:
                    result = runner.run(run_config(config, base, n, per_worker))
                results.append(result)
                out.write(row(result))
                out.flush()
    out.write(excess_table(results) + goal_lines(results))
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,16,64,256", help="concurrency levels, comma list")
    parser.add_argument("--rounds", type=int, default=2, help="requests per worker (min 20/level)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma list of: " + ", ".join(CONFIGS))
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write rows")
    args = parser.parse_args(argv)
    args.levels = [int(x) for x in args.levels.split(",") if x]
    args.configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown or not args.levels or args.rounds < 1:
        parser.error(f"bad --configs/--levels/--rounds (unknown configs: {unknown})")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = run_all(args.levels, args.rounds, args.configs)
    if args.json is not None:
        payload = {"profile": PROFILE_ARGS, "rounds": args.rounds,
                   "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
