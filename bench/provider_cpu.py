"""CPU of the OpenAI-compatible provider alone, per request and per token (no CLI, no writer).

    python bench/provider_cpu.py BASE_URL [--streams 64] [--waves 5] [--max-tokens 1000]

Against a running emulator (``python -m latlab.providers.emulator --ttft-ms 150 --itl-ms 10
--output-tokens 50``): ``streams`` requests warm the pool, then ``streams`` workers each send
``waves`` requests in turn. Prints this process's CPU (``time.process_time``) per request and
per content token. With ``--max-tokens 1`` the per-request cost stands alone; the difference
to a 50-token run, over 49, is the cost of one more chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from emulator_process import ROOT

sys.path.insert(0, str(ROOT))

from latlab.providers.http import make_http_client  # noqa: E402
from latlab.providers.openai_compat import OpenAICompatProvider  # noqa: E402
from latlab.runner.core.protocol import RequestSpec  # noqa: E402
from latlab.runner.core.records import Measurement  # noqa: E402
from latlab.runner.core.timing import new_event_loop  # noqa: E402


async def measure(base: str, streams: int, waves: int, max_tokens: int) -> str:
    spec = RequestSpec(model_id="bench", max_tokens=max_tokens, stream=True,
                       messages=[{"role": "user", "content": "hi"}], timeout_s=60.0)
    provider = OpenAICompatProvider(make_http_client("aiohttp"), base, "bench")

    async def worker() -> list[Measurement]:
        return [await provider.send(spec) for _ in range(waves)]

    try:
        await asyncio.gather(*(provider.send(spec) for _ in range(streams)))
        cpu0 = time.process_time()
        rows = [m for batch in await asyncio.gather(*(worker() for _ in range(streams)))
                for m in batch]
        cpu = time.process_time() - cpu0
    finally:
        await provider.aclose()
    tokens = sum(len(m.itl_ms) + 1 for m in rows if m.ok)
    return (f"requests {len(rows)} errors {sum(not m.ok for m in rows)} tokens {tokens}: "
            f"{cpu * 1e6 / len(rows):.0f} µs/request, {cpu * 1e6 / max(tokens, 1):.1f} µs/token")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=1000)
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        line = runner.run(measure(args.base_url, args.streams, args.waves, args.max_tokens))
    sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
