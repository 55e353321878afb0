"""latlab's stdio MCP server and client: a real subprocess speaking JSON-RPC over pipes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from latlab.runner.agents.mcp_client import McpClient
from latlab.runner.agents.mcp_server import handle


def test_client_lists_and_calls_the_tool(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("one two\nthree\n")

    async def session() -> tuple[list[str], tuple[str, bool], tuple[str, bool]]:
        client = McpClient.builtin(tmp_path)
        try:
            tools = await client.start()
            found = await client.call("file_stats", {"path": str(tmp_path / "f.txt")})
            missing = await client.call("file_stats", {"path": str(tmp_path / "nope")})
            return [t["name"] for t in tools], found, missing
        finally:
            await client.aclose()

    names, found, missing = asyncio.run(session())
    assert names == ["file_stats"]
    assert found == ("lines=2 words=3 bytes=14", False)
    assert missing[1] is True and "cannot read" in missing[0]


def test_server_errors_and_notifications() -> None:
    assert handle({"jsonrpc": "2.0", "method": "notifications/initialized"}) is None
    reply = handle({"jsonrpc": "2.0", "id": 1, "method": "resources/list"})
    assert reply is not None and reply["error"]["code"] == -32601
    reply = handle({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "rm_rf", "arguments": {}}})
    assert reply is not None and reply["error"]["code"] == -32602
