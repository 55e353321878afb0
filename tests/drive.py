"""Drive a provider from a test: make it inside a fresh event loop, send specs in turn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from latlab.runner.core.protocol import Provider, RequestSpec
from latlab.runner.core.records import Measurement


def send_in_turn(make_provider: Callable[[], Provider],
                 specs: Sequence[RequestSpec]) -> list[Measurement]:
    """One request after another on one provider (so its connection is reused), then close."""

    async def go() -> list[Measurement]:
        provider = make_provider()
        try:
            return [await provider.send(s) for s in specs]
        finally:
            await provider.aclose()

    return asyncio.run(go())
