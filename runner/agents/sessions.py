"""Agent-session workloads: which cells hold sessions, their setup checks, and the dispatch
of each planned session to its driver (``workload.kind``), a registry like the providers':

    session      the built-in agent loop over any provider   agents/session.py
    claude_code  the real Claude Code CLI through the proxy  agents/claude_code.py

A driver module defines ``check_cell(cfg)`` (setup errors, ConfigError naming the key) and
``run_session(context, planned, worker, scheduled_ns)``, and is imported only when a run
holds its kind: a plain run never loads the agent loop, MCP, or the recording proxy.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol, cast

from latlab.runner.agents.context import SessionContext
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.tasks import load_task
from latlab.runner.engine.plan import Cell, PlannedRequest

SESSION_DRIVERS: dict[str, str] = {  # workload.kind -> latlab.runner.agents.<module>
    "session": "session",
    "claude_code": "claude_code",
}
SESSION_KINDS = tuple(SESSION_DRIVERS)


class SessionDriver(Protocol):
    """What a driver module provides."""

    def check_cell(self, cfg: Mapping[str, Any]) -> None: ...

    async def run_session(self, context: SessionContext, planned: PlannedRequest, worker: int,
                          scheduled_ns: int) -> None: ...


def driver(kind: str) -> SessionDriver:
    """The driver module of a session kind, imported on first use."""
    return cast(SessionDriver,
                importlib.import_module(f"latlab.runner.agents.{SESSION_DRIVERS[kind]}"))


def workload_kind(cell: Cell) -> str:
    return str(cell.workload.get("kind", "requests"))


def has_sessions(cells: list[Cell]) -> bool:
    return any(workload_kind(c) in SESSION_KINDS for c in cells)


def check_session_cells(cells: list[Cell]) -> None:
    """Setup errors of session workloads, before any request (ConfigError naming the key)."""
    for cell in cells:
        if workload_kind(cell) not in SESSION_KINDS:
            continue
        load_task(str(cell.workload.get("task", "simple")))
        if int(cell.workload.get("workers", 1)) > 1:
            raise ConfigError("workload.workers: agent sessions run in one process (set 1)")
        driver(workload_kind(cell)).check_cell(cell.config)


class SessionTimer(SessionContext):
    """``send_one`` for plans that hold sessions; plain requests go to the RequestTimer."""

    async def send_one(self, planned: PlannedRequest, worker: int, scheduled_ns: int) -> None:
        kind = workload_kind(planned.cell)
        if kind in SESSION_DRIVERS:
            await driver(kind).run_session(self, planned, worker, scheduled_ns)
        else:
            await self.timer.send_one(planned, worker, scheduled_ns)
