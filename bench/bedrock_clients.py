"""Bedrock clients side by side: latlab's signed async path against plain boto3 in threads.

Starts ``python -m latlab.providers.emulator`` in its own process with a fixed profile (TTFB 5 ms,
TTFT 150 ms, one token every 10 ms, 50 tokens; profile ``fast``: no Bedrock overhead) and drives its
InvokeModelWithResponseStream route with latlab's Bedrock provider in each client
configuration, one closed-loop level at a time:

    python bench/bedrock_clients.py [--levels 1,16,64,200] [--rounds 2]
        [--configs httpx-aiohttp,httpx-httpcore,boto3] [--api invoke_stream] [--json FILE]

``httpx-*`` is latlab's default path (botocore's SigV4 signer per request, an async httpx
client, botocore's event-stream parser); ``boto3`` is the plain boto3 client that
applications use, one worker thread per stream (``client=boto3``). Error columns are as in
``bench/fidelity.py``: measured minus the emulator's true schedule (150 ms + its own send lag).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_process import emulator_process  # noqa: E402
from fidelity import (  # noqa: E402
    HEADER,
    MIN_REQUESTS,
    PROFILE_ARGS,
    ROOT,
    LevelResult,
    closed_loop,
    legend,
    row,
    server_stats,
    summarize,
)

sys.path.insert(0, str(ROOT))
from latlab.providers.bedrock import build, resolve_endpoint  # noqa: E402
from latlab.runner.core.protocol import RequestSpec  # noqa: E402

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
CONFIGS: dict[str, tuple[str, str]] = {  # name -> (client, transport)
    "httpx-aiohttp": ("httpx", "aiohttp"),
    "httpx-httpcore": ("httpx", "httpcore"),
    "boto3": ("boto3", "aiohttp"),
}


def spec(max_tokens: int = 1000) -> RequestSpec:
    return RequestSpec(model_id=MODEL, max_tokens=max_tokens, stream=True, timeout_s=60.0,
                       messages=[{"role": "user", "content": "hello"}])


def provider_cfg(config: str, api: str) -> dict[str, Any]:
    client, transport = CONFIGS[config]
    return {"name": "bedrock", "kind": "bedrock", "api": api, "client": client,
            "transport": transport, "region": "us-east-1", "max_connections": 0}


async def run_level(config: str, api: str, base: str, n: int, per_worker: int) -> LevelResult:
    """Warm ``n`` connections with one short request each, reset the stats, run the loop."""
    cfg = provider_cfg(config, api)
    provider = build(cfg, resolve_endpoint(cfg, base))
    async with httpx.AsyncClient() as control:
        try:
            await asyncio.gather(*(provider.send(spec(max_tokens=1)) for _ in range(n)))
            await server_stats(control, base, reset=True)
            rows, wall, cpu = await closed_loop(lambda: provider.send(spec()), n, per_worker)
            stats = await server_stats(control, base)
        finally:
            await provider.aclose()
    return summarize(config, n, rows, wall, cpu, stats)


def run_all(levels: list[int], rounds: int, configs: list[str], api: str) -> list[LevelResult]:
    results: list[LevelResult] = []
    with emulator_process(["--profile", "fast", *PROFILE_ARGS]) as base:  # fast: no Bedrock layer
        sys.stdout.write(legend(base) + f"api: {api}\n" + HEADER)
        for i, n in enumerate(levels):
            per_worker = max(rounds, math.ceil(MIN_REQUESTS / n))
            shift = i % len(configs)
            for config in configs[shift:] + configs[:shift]:
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    results.append(runner.run(run_level(config, api, base, n, per_worker)))
                sys.stdout.write(row(results[-1]))
                sys.stdout.flush()
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,16,64,200", help="concurrency levels, comma list")
    parser.add_argument("--rounds", type=int, default=2, help="requests per worker (min 20/level)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma list of: " + ", ".join(CONFIGS))
    parser.add_argument("--api", default="invoke_stream", choices=["invoke_stream",
                                                                    "converse_stream"])
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write rows")
    args = parser.parse_args(argv)
    args.levels = [int(x) for x in args.levels.split(",") if x]
    args.configs = [c for c in args.configs.split(",") if c]
    if [c for c in args.configs if c not in CONFIGS] or not args.levels or args.rounds < 1:
        parser.error(f"bad --configs/--levels/--rounds; configs are {', '.join(CONFIGS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    results = run_all(args.levels, args.rounds, args.configs, args.api)
    sys.stdout.write(f"\n{time.perf_counter() - started:.0f} s\n")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
