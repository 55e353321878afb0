"""A local Anthropic Messages API emulator with latency profiles and fault injection.

    with start_emulator(EmulatorProfile.fixed(20, 60, 5, 10)) as emu:
        client = anthropic.Anthropic(base_url=emu.base_url, api_key="test-key")
        ...
        emu.stats()  # the server's own send lag

``start_emulator`` runs the server in a background thread on its own event loop (uvloop when
available); ``serve_forever`` runs it on the caller's loop (``latlab emulator serve``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from latlab.providers.emulator.profile import (
    FAULT_KINDS,
    Distribution,
    EmulatorProfile,
    FaultProfile,
    ModelProfile,
)
from latlab.providers.emulator.server import build_app, start_site
from latlab.providers.emulator.state import PACING, STATE_KEY
from latlab.runner.core.timing import new_event_loop

__all__ = [
    "FAULT_KINDS",
    "Distribution",
    "EmulatorProfile",
    "FaultProfile",
    "ModelProfile",
    "RunningEmulator",
    "build_app",
    "serve_forever",
    "start_emulator",
]

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


class RunningEmulator:
    """An emulator serving from a background thread. Stop it with ``stop()`` or ``with``."""

    def __init__(self, profile: EmulatorProfile, host: str = "127.0.0.1", port: int = 0) -> None:
        self.profile = profile
        self._app = build_app(profile)
        PACING.spin_margin_ns = 0  # in the client's process: never hold the GIL spinning
        self._loop = new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="latlab-emulator", daemon=True
        )
        self._runner: web.AppRunner | None = None
        self._stopped = False
        self._thread.start()
        try:
            future = asyncio.run_coroutine_threadsafe(start_site(self._app, host, port), self._loop)
            self._runner, self.base_url = future.result(_START_TIMEOUT_S)
        except BaseException:
            self._stop_loop()
            raise

    def stats(self) -> dict[str, Any]:
        """``{requests, active, faults, lag_ms: {count, p50, p99, max, mean}, lag_ms_by_event}``."""
        return self._app[STATE_KEY].snapshot()

    def reset_stats(self) -> None:
        self._app[STATE_KEY].stats.reset()

    def stop(self) -> None:
        """Close the listener and all connections, stop the loop and join the thread."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._runner is not None:
                cleanup = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
                cleanup.result(_STOP_TIMEOUT_S)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._stopped = True
        loop = self._loop
        if self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(_drain_loop(), loop)
            done.result(_STOP_TIMEOUT_S)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(_STOP_TIMEOUT_S)
        if not loop.is_running():
            loop.close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<RunningEmulator {self.base_url if self._runner else '?'} {state}>"


async def _drain_loop() -> None:
    """Cancel leftover tasks and shut down async generators before the loop stops."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


def start_emulator(
    profile: EmulatorProfile, host: str = "127.0.0.1", port: int = 0
) -> RunningEmulator:
    """Start an emulator in a background thread; returns once it accepts connections.

    ``port=0`` binds an ephemeral port; read the address from ``.base_url``.
    """
    return RunningEmulator(profile, host, port)


async def serve_forever(
    profile: EmulatorProfile,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Serve on the running loop until ``stop`` is set (or the task is cancelled).

    ``on_ready(base_url)`` is called once the socket accepts connections.
    """
    runner, base_url = await start_site(build_app(profile), host, port)
    try:
        on_ready(base_url)
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
