"""Agent-session workloads: which cells hold sessions, their setup checks, and the dispatch
of each planned session to its driver (``workload.kind``):

    session      the built-in agent loop over any provider   agents/session.py
    claude_code  the real Claude Code CLI through the proxy  agents/claude_code.py
"""

from __future__ import annotations

from latlab.runner.agents.claude_code import require_claude, run_claude_code_session
from latlab.runner.agents.context import SessionContext
from latlab.runner.agents.session import BuiltinSession
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.tasks import load_task
from latlab.runner.engine.plan import Cell, PlannedRequest

SESSION_KINDS = ("session", "claude_code")


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
        if workload_kind(cell) == "claude_code":
            require_claude(cell.config)
        if workload_kind(cell) == "session" and str(cell.config["provider"].get(
                "api", "messages")).startswith("converse"):
            raise ConfigError("provider.api: the agent loop needs Anthropic events "
                              "(messages, invoke or invoke_stream), not converse")


class SessionTimer(SessionContext):
    """``send_one`` for plans that hold sessions; plain requests go to the RequestTimer."""

    async def send_one(self, planned: PlannedRequest, worker: int, scheduled_ns: int) -> None:
        kind = workload_kind(planned.cell)
        if kind == "session":
            await BuiltinSession(self, planned, worker, scheduled_ns).run()
        elif kind == "claude_code":
            await run_claude_code_session(self, planned, worker, scheduled_ns)
        else:
            await self.timer.send_one(planned, worker, scheduled_ns)
