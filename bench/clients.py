"""What a client library costs per request: CPU and milliseconds, same cell, same emulator.

Starts ``python -m latlab.providers.emulator`` in its own process (fixed profile: TTFB 5 ms, TTFT
50 ms, a token every 2 ms, 50 tokens, sigma 0), then in this process sends the same streamed
request through each client of each provider, one request at a time:

    python bench/clients.py [--requests 60] [--json FILE]

Per client: the median client-side TTFT and total minus the emulator's planned ones (what the
client adds to the latency an application sees) and this process's CPU time per request
(``time.process_time``, every thread: boto3 runs in worker threads). Rounds rotate through the
clients (A B C A B C …) so machine noise hits them alike; 5 warm-up requests each first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from latlab.providers.bedrock import DUMMY_CREDENTIALS  # noqa: E402
from latlab.providers.clients import client_version  # noqa: E402
from latlab.providers.registry import kind_for  # noqa: E402
from latlab.runner.core.protocol import DUMMY_KEY, Endpoint, Provider, RequestSpec  # noqa: E402
from latlab.runner.core.records import Measurement  # noqa: E402

TTFB_MS, TTFT_MS, ITL_MS, TOKENS = 5.0, 50.0, 2.0, 50
TOTAL_MS = TTFT_MS + (TOKENS - 1) * ITL_MS
CELLS = [("anthropic", "httpx"), ("anthropic", "sdk"), ("bedrock", "httpx"),
         ("bedrock", "boto3"), ("bedrock", "sdk"), ("vertex", "httpx"), ("vertex", "sdk"),
         ("openai_compat", "httpx"), ("openai_compat", "sdk")]
IDS = {"anthropic": "claude-haiku-4-5-20251001", "openai_compat": "claude-haiku-4-5-20251001",
       "bedrock": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
       "vertex": "claude-haiku-4-5@20251001"}


@contextmanager
def emulator() -> Iterator[str]:
    args = ["--port", "0", "--ttfb-ms", f"{TTFB_MS:g}", "--ttft-ms", f"{TTFT_MS:g}",
            "--itl-ms", f"{ITL_MS:g}", "--output-tokens", str(TOKENS)]
    process = subprocess.Popen([sys.executable, "-m", "latlab.providers.emulator", *args],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def build(kind: str, client: str, base_url: str) -> Provider:
    cfg: dict[str, Any] = {"name": kind, "kind": kind, "client": client, "region": "us-east-1",
                           "api": "invoke_stream", "transport": "aiohttp"}
    credentials = {"bedrock": DUMMY_CREDENTIALS, "vertex": "proj"}.get(kind)
    key = None if kind == "bedrock" else DUMMY_KEY
    return kind_for(kind).build(cfg, Endpoint(base_url, key, True, credentials))


async def one(provider: Provider, spec: RequestSpec) -> tuple[Measurement, float]:
    cpu = time.process_time()
    m = await provider.send(spec)
    return m, time.process_time() - cpu


async def measure(base_url: str, n: int) -> list[dict[str, Any]]:
    providers = {cell: build(*cell, base_url) for cell in CELLS}
    specs = {cell: RequestSpec(model_id=IDS[cell[0]], max_tokens=100, stream=True, timeout_s=10,
                               messages=[{"role": "user", "content": "count"}])
             for cell in CELLS}
    results: dict[tuple[str, str], list[tuple[Measurement, float]]] = {c: [] for c in CELLS}
    for round_ in range(5 + n):
        for cell in CELLS:
            outcome = await one(providers[cell], specs[cell])
            if round_ >= 5:
                results[cell].append(outcome)
    for provider in providers.values():
        await provider.aclose()
    return [summary(cell, results[cell]) for cell in CELLS]


def summary(cell: tuple[str, str], rows: list[tuple[Measurement, float]]) -> dict[str, Any]:
    ok = [m for m, _ in rows if m.ok]
    return {"provider": cell[0], "client": cell[1], "version": client_version(*cell),
            "ok": len(ok), "n": len(rows),
            "ttft_added_ms": round(statistics.median(m.ttft_ms or 0 for m in ok) - TTFT_MS, 2),
            "total_added_ms": round(statistics.median(m.total_ms or 0 for m in ok) - TOTAL_MS, 2),
            "cpu_ms_per_request": round(1000 * statistics.mean(c for _, c in rows), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with emulator() as base_url:
        table = asyncio.run(measure(base_url, args.requests))
    header = ("| provider | client | version | ok | TTFT added (ms) | total added (ms) "
              "| CPU/request (ms) |")
    print(header + "\n|---|---|---|---:|---:|---:|---:|")  # noqa: T201
    for r in table:
        print(f"| {r['provider']} | {r['client']} | {r['version']} | {r['ok']}/{r['n']} | "  # noqa: T201
              f"{r['ttft_added_ms']} | {r['total_added_ms']} | {r['cpu_ms_per_request']} |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
