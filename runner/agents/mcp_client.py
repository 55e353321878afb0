"""A minimal MCP client over stdio: start a server process, initialize, list and call tools."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from latlab.runner.agents.mcp_server import PROTOCOL_VERSION


class McpError(Exception):
    """The server answered with a JSON-RPC error, or went away."""


class McpClient:
    """One stdio MCP server process; requests are sent one at a time."""

    def __init__(self, command: list[str], cwd: Path, timeout_s: float = 30.0) -> None:
        self.command, self.cwd, self.timeout_s = command, cwd, timeout_s
        self.process: asyncio.subprocess.Process | None = None
        self.ids = itertools.count(1)
        self.server_name = "latlab"

    @classmethod
    def builtin(cls, cwd: Path) -> McpClient:
        """latlab's own server (runner/agents/mcp_server.py), run by this Python."""
        return cls([sys.executable, "-m", "latlab.runner.agents.mcp_server"], cwd)

    async def start(self) -> list[dict[str, Any]]:
        """Start the server, do the handshake; returns its tools (``tools/list``)."""
        self.process = await asyncio.create_subprocess_exec(
            *self.command, cwd=self.cwd, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        info = await self.request("initialize", {
            "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "latlab", "version": "1"}})
        self.server_name = str((info.get("serverInfo") or {}).get("name", "latlab"))
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed = await self.request("tools/list", {})
        return list(listed.get("tools") or [])

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """``tools/call``: (the text content, is_error)."""
        result = await self.request("tools/call", {"name": name, "arguments": arguments})
        text = "".join(str(c.get("text", "")) for c in result.get("content") or []
                       if c.get("type") == "text")
        return text, bool(result.get("isError"))

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        msg_id = next(self.ids)
        await self._send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        async with asyncio.timeout(self.timeout_s):
            while True:
                reply = await self._receive()
                if reply.get("id") == msg_id:
                    break
        if "error" in reply:
            raise McpError(f"{method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result") or {}
        return result

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()

    async def _receive(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise McpError("the MCP server closed its output")
        message: dict[str, Any] = json.loads(line)
        return message

    async def aclose(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5.0)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
