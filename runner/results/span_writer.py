"""Write spans as the session goes: small Parquet part files under ``spans/<run_id>/``.

Same conventions as runner/results/write.py (a temporary name renamed into place, so every
``*.parquet`` on disk is complete); the span record itself is runner/core/spans.py.
"""

from __future__ import annotations

import contextlib
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

from latlab.runner.core.secrets import redact, secret_values
from latlab.runner.core.spans import _FIELDS, SPANS_SCHEMA, Span, new_span_id
from latlab.runner.results import storage
from latlab.runner.results.layout import spans_folder
from latlab.runner.results.write import atomic_write_table


def span_record(span: Span, hidden: list[str]) -> dict[str, Any]:
    """The Parquet row of ``span``: attributes as JSON, secrets redacted."""
    row = {f.name: getattr(span, f.name) for f in _FIELDS}
    row["attributes"] = redact(json.dumps(span.attributes, default=str, sort_keys=True), hidden)
    row["error_message"] = redact(span.error_message, hidden)
    return row


class SpanWriter:
    """Buffers spans and writes them as small Parquet files under ``spans/<run_id>/``."""

    def __init__(self, results_dir: Path, run_id: str, batch_rows: int = 256) -> None:
        self.folder = spans_folder(results_dir, run_id)
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
