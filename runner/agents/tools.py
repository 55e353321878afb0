"""The built-in agent's tools, executed for real in the session's work directory.

``Bash``, ``Read``, ``Write`` and ``Edit`` take the same inputs as Claude Code's tools of
those names (so one emulator script drives both drivers); MCP tools come from a stdio MCP
server (runner/agents/mcp_server.py) and are named ``mcp__<server>__<tool>`` as Claude Code does.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latlab.runner.agents.mcp_client import McpClient, McpError

MAX_OUTPUT_CHARS = 20_000


def _schema(properties: dict[str, str], required: list[str]) -> dict[str, Any]:
    props = {k: {"type": "string", "description": v} for k, v in properties.items()}
    return {"type": "object", "properties": props, "required": required}


BUILTIN_TOOLS: list[dict[str, Any]] = [
    {"name": "Bash", "description": "Run a shell command in the working directory.",
     "input_schema": _schema({"command": "the command", "description": "what it does"},
                             ["command"])},
    {"name": "Read", "description": "Read a text file.",
     "input_schema": _schema({"file_path": "path of the file"}, ["file_path"])},
    {"name": "Write", "description": "Write a text file (created or replaced).",
     "input_schema": _schema({"file_path": "path", "content": "the text"},
                             ["file_path", "content"])},
    {"name": "Edit", "description": "Replace one exact string in a file.",
     "input_schema": _schema({"file_path": "path", "old_string": "text to find",
                              "new_string": "replacement"},
                             ["file_path", "old_string", "new_string"])},
]


@dataclass
class ToolOutcome:
    text: str
    is_error: bool = False
    exit_code: int | None = None


class ToolBox:
    """Runs tool_use blocks in ``workdir``; MCP tools through ``mcp`` when given."""

    def __init__(self, workdir: Path, timeout_s: float = 60.0,
                 mcp: McpClient | None = None) -> None:
        self.workdir, self.timeout_s, self.mcp = workdir, timeout_s, mcp
        self.mcp_tools: list[dict[str, Any]] = []

    async def start(self) -> None:
        if self.mcp is not None:
            self.mcp_tools = await self.mcp.start()

    def definitions(self) -> list[dict[str, Any]]:
        """The ``tools`` of the Messages request."""
        server = self.mcp.server_name if self.mcp else ""
        return BUILTIN_TOOLS + [
            {"name": f"mcp__{server}__{t['name']}", "description": t.get("description", ""),
             "input_schema": t.get("inputSchema") or {"type": "object"}}
            for t in self.mcp_tools]

    async def run(self, name: str, tool_input: dict[str, Any]) -> ToolOutcome:
        """Execute one tool call; failures are outcomes with ``is_error``, never exceptions."""
        try:
            return await self._dispatch(name, tool_input)
        except (OSError, KeyError, TypeError, ValueError, McpError, TimeoutError) as exc:
            return ToolOutcome(f"{type(exc).__name__}: {exc}", is_error=True)

    async def _dispatch(self, name: str, tool_input: dict[str, Any]) -> ToolOutcome:
        if name == "Bash":
            return await self.bash(str(tool_input["command"]))
        if name == "Read":
            return ToolOutcome(self.path(tool_input).read_text(encoding="utf-8"))
        if name == "Write":
            path = self.path(tool_input)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(tool_input["content"]), encoding="utf-8")
            return ToolOutcome(f"wrote {path.name}")
        if name == "Edit":
            return self.edit(tool_input)
        if name.startswith("mcp__") and self.mcp is not None:
            text, is_error = await self.mcp.call(name.split("__", 2)[2], tool_input)
            return ToolOutcome(text, is_error)
        return ToolOutcome(f"unknown tool {name!r}", is_error=True)

    def path(self, tool_input: dict[str, Any]) -> Path:
        return self.workdir / str(tool_input["file_path"])  # an absolute path stays absolute

    def edit(self, tool_input: dict[str, Any]) -> ToolOutcome:
        path = self.path(tool_input)
        text = path.read_text(encoding="utf-8")
        old = str(tool_input["old_string"])
        if text.count(old) != 1:
            return ToolOutcome(f"old_string found {text.count(old)} times in {path.name}",
                               is_error=True)
        path.write_text(text.replace(old, str(tool_input["new_string"])), encoding="utf-8")
        return ToolOutcome(f"edited {path.name}")

    async def bash(self, command: str) -> ToolOutcome:
        env = {**os.environ, "PWD": str(self.workdir)}
        process = await asyncio.create_subprocess_shell(
            command, cwd=self.workdir, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(process.communicate(), self.timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            return ToolOutcome(f"timed out after {self.timeout_s:g} s", True, -9)
        code = process.returncode if process.returncode is not None else -1
        text = out.decode("utf-8", errors="replace")[-MAX_OUTPUT_CHARS:]
        return ToolOutcome(text if code == 0 else f"Exit code {code}\n{text}", code != 0, code)

    async def aclose(self) -> None:
        if self.mcp is not None:
            await self.mcp.aclose()
