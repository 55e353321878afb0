"""Spans: one row per step of an agent session, in the ``spans`` dataset beside ``requests``.

Written under ``spans/<run_id>/`` by runner/results/span_writer.py.

A session is a tree: ``session`` → ``turn`` → ``model_call`` (→ ``http_call``) and
``tool_call``. A ``model_call`` span has the same ``span_id`` as its row in ``requests``
(column ``requests.span_id``). Columns: docs/columns.md.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from latlab.runner.core.records import arrow_schema

KINDS = ("session", "turn", "model_call", "tool_call", "http_call")
CATEGORIES = ("model", "bash", "mcp", "file", "cli", "http", "other")


def new_span_id() -> str:
    return secrets.token_hex(8)


@dataclass
class Span:
    """One step of a session. Times: ``started_at`` (UTC), ``duration_ms`` (monotonic)."""

    run_id: str
    session_id: str
    span_id: str
    parent_id: str | None
    kind: str
    name: str
    category: str
    started_at: datetime
    duration_ms: float | None = None
    status: str = "ok"  # ok | error
    cell: str | None = None
    provider: str | None = None
    driver: str | None = None  # builtin | claude_code
    task: str | None = None
    turn: int | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    http_status: int | None = None
    request_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    tool_use_id: str | None = None
    tool_input_bytes: int | None = None
    tool_output_bytes: int | None = None
    exit_code: int | None = None
    method: str | None = None
    endpoint: str | None = None
    host: str | None = None
    streaming: bool | None = None
    request_bytes: int | None = None
    response_bytes: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    _t0_ns: int = field(default=0, repr=False)

    def finish(self, end_ns: int | None = None) -> None:
        """Set ``duration_ms`` from the span's monotonic start to now (or ``end_ns``)."""
        self.duration_ms = ((end_ns or time.perf_counter_ns()) - self._t0_ns) / 1e6

    def fail(self, error_type: str, message: str | None = None) -> None:
        self.status, self.error_type = "error", error_type
        self.error_message = message[:300] if message else None


_FIELDS = [f for f in dataclasses.fields(Span) if not f.name.startswith("_")]
SPANS_SCHEMA = arrow_schema(Span)


def category_for_tool(name: str, command: str | None = None) -> str:
    """The category of a tool call: mcp, bash (cli for known CLI tools), file or other."""
    lowered = name.lower()
    if lowered.startswith("mcp__"):
        return "mcp"
    if lowered == "bash":
        first = (command or "").strip().split(" ")[0]
        return "cli" if first in CLI_TOOLS else "bash"
    if lowered in ("read", "write", "edit", "multiedit", "notebookedit", "glob", "grep", "ls"):
        return "file"
    return "other"


# Commands that the seed study counted as "other CLI tools" rather than shell work.
CLI_TOOLS = frozenset({"git", "gh", "npm", "npx", "node", "pip", "uv", "docker", "kubectl",
                       "aws", "gcloud", "terraform", "make", "cargo", "go"})
