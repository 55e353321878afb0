"""What the sessions of one run share (engine/execute.py's timer, endpoints, the span writer).

Both drivers, the built-in loop (agents/session.py) and Claude Code (agents/claude_code.py),
get a ``SessionContext``; agents/sessions.py dispatches each planned session to its driver.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from latlab.runner.core.protocol import Endpoint
from latlab.runner.core.spans import Span
from latlab.runner.engine.execute import RequestTimer, RowNote
from latlab.runner.engine.plan import PlannedRequest
from latlab.runner.results.span_writer import SpanRecorder, SpanWriter


class SessionContext:
    """What every session of a run shares: the request timer, endpoints and span writer."""

    def __init__(self, timer: RequestTimer, endpoints: Mapping[str, Endpoint]) -> None:
        self.timer, self.endpoints = timer, endpoints
        self.spans = SpanWriter(timer.writer.results_dir, timer.run_id)

    def recorder(self, planned: PlannedRequest, driver: str) -> SpanRecorder:
        cfg = planned.cell.config
        context = {"cell": planned.cell.name, "provider": cfg["provider"]["name"],
                   "driver": driver, "task": str(cfg["workload"].get("task", "simple"))}
        return SpanRecorder(self.spans, self.timer.run_id, uuid.uuid4().hex, context)

    def note_session(self, root: Span, planned: PlannedRequest, ttft_ms: float | None) -> None:
        """One session = one step of the progress bar (an error if the session failed)."""
        self.timer.stats.note(RowNote(root.status != "ok", ttft_ms, planned.warmup, None, False))

    def close(self) -> None:
        self.spans.flush()
