"""A minimal MCP server over stdio (JSON-RPC 2.0, one message per line): one tool, ``file_stats``.

Started by the built-in agent loop (runner/agents/mcp_client.py) and, through ``--mcp-config``, by
Claude Code: ``python -m latlab.runner.agents.mcp_server``. It implements what a tool server needs:
``initialize``, ``notifications/initialized``, ``ping``, ``tools/list`` and ``tools/call``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = "2025-06-18"
SERVER_NAME = "latlab"
TOOL = {
    "name": "file_stats",
    "description": "Count the lines, words and bytes of a text file.",
    "inputSchema": {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "file path"}},
        "required": ["path"],
    },
}


def file_stats(arguments: dict[str, Any]) -> tuple[str, bool]:
    """``lines=… words=… bytes=…`` of the file at ``arguments["path"]``; (text, is_error)."""
    try:
        data = Path(str(arguments.get("path", ""))).read_bytes()
    except OSError as exc:
        return f"cannot read {arguments.get('path')!r}: {exc.strerror or exc}", True
    text = data.decode("utf-8", errors="replace")
    return f"lines={text.count(chr(10))} words={len(text.split())} bytes={len(data)}", False


def handle(message: dict[str, Any]) -> dict[str, Any] | None:
    """The response to one JSON-RPC message (None for notifications)."""
    method, msg_id = message.get("method"), message.get("id")
    if msg_id is None:
        return None
    if method == "initialize":
        version = (message.get("params") or {}).get("protocolVersion", PROTOCOL_VERSION)
        result: dict[str, Any] = {"protocolVersion": version, "capabilities": {"tools": {}},
                                  "serverInfo": {"name": SERVER_NAME, "version": "1"}}
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": [TOOL]}
    elif method == "tools/call":
        params = message.get("params") or {}
        if params.get("name") != TOOL["name"]:
            return _error(msg_id, -32602, f"unknown tool {params.get('name')!r}")
        text, is_error = file_stats(params.get("arguments") or {})
        result = {"content": [{"type": "text", "text": text}], "isError": is_error}
    else:
        return _error(msg_id, -32601, f"method not found: {method}")
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def _error(msg_id: Any, code: int, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": text}}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            reply: dict[str, Any] | None = _error(None, -32700, "parse error")
        else:
            reply = handle(message) if isinstance(message, dict) else None
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
