"""Spans: one row per step of an agent session, in the ``spans`` dataset beside ``requests``.

Layout under ``results_dir`` (same conventions as runner/write.py: small part files written
to a temporary name and renamed into place, so every ``*.parquet`` on disk is complete)::

    spans/<run_id>/part-<seq>-<pid>-<rand>.parquet

A session is a tree: ``session`` → ``turn`` → ``model_call`` (→ ``http_call``) and
``tool_call``. A ``model_call`` span has the same ``span_id`` as its row in ``requests``
(column ``requests.span_id``). Columns: docs/columns.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from runner import storage
from runner.secrets import redact, secret_values
from runner.write import atomic_write_table

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


_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
    "datetime": pa.timestamp("us", tz="UTC"),
}
_FIELDS = [f for f in dataclasses.fields(Span) if not f.name.startswith("_")]
SPANS_SCHEMA = pa.schema(
    [pa.field(f.name, _TYPES[str(f.type).replace(" | None", "")]) for f in _FIELDS
     if f.name != "attributes"] + [pa.field("attributes", pa.string())]
)


def span_record(span: Span, hidden: list[str]) -> dict[str, Any]:
    """The Parquet row of ``span``: attributes as JSON, secrets redacted."""
    row = {f.name: getattr(span, f.name) for f in _FIELDS}
    row["attributes"] = redact(json.dumps(span.attributes, default=str, sort_keys=True), hidden)
    row["error_message"] = redact(span.error_message, hidden)
    return row


class SpanWriter:
    """Buffers spans and writes them as small Parquet files under ``spans/<run_id>/``."""

    def __init__(self, results_dir: Path, run_id: str, batch_rows: int = 256) -> None:
        self.folder = Path(results_dir) / "spans" / run_id
        if not storage.is_remote(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
        self.batch_rows = batch_rows
        self.buffer: list[Span] = []
        self.files = 0
        self.written = 0
        self.hidden = secret_values()

    def add(self, span: Span) -> None:
        self.buffer.append(span)
        if len(self.buffer) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        rows = [span_record(s, self.hidden) for s in self.buffer]
        name = f"part-{self.files:05d}-{os.getpid()}-{secrets.token_hex(3)}.parquet"
        atomic_write_table(pa.Table.from_pylist(rows, schema=SPANS_SCHEMA), self.folder / name)
        self.files += 1
        self.written += len(self.buffer)
        self.buffer = []


@dataclass
class SpanRecorder:
    """Opens spans of one session with common context and hands finished ones to a writer."""

    writer: SpanWriter | None
    run_id: str
    session_id: str
    context: dict[str, Any] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)

    def start(self, kind: str, name: str, category: str, parent: Span | None = None,
              **values: Any) -> Span:
        fields: dict[str, Any] = {
            "run_id": self.run_id, "session_id": self.session_id, "span_id": new_span_id(),
            "parent_id": parent.span_id if parent else None, "kind": kind, "name": name,
            "category": category, "started_at": datetime.now(UTC),
            "_t0_ns": time.perf_counter_ns(), **self.context, **values}
        return Span(**fields)

    def end(self, span: Span, end_ns: int | None = None) -> Span:
        if span.duration_ms is None:
            span.finish(end_ns)
        self.spans.append(span)
        if self.writer is not None:
            self.writer.add(span)
        return span

    @contextlib.contextmanager
    def span(self, kind: str, name: str, category: str, parent: Span | None = None,
             **values: Any) -> Iterator[Span]:
        """A span around the block; an exception marks it failed and is re-raised."""
        span = self.start(kind, name, category, parent, **values)
        try:
            yield span
        except BaseException as exc:
            span.fail(type(exc).__name__, str(exc))
            raise
        finally:
            self.end(span)


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
