"""``latlab proxy``: the recording proxy on its own, for agent sessions you drive yourself.

Point Claude Code (or any Anthropic client) at it (``ANTHROPIC_BASE_URL``); every call is
forwarded to ``--upstream`` and written at once as spans (``model_call`` + ``http_call``,
or ``http_call``) of run ``<run_id>``, one session per ``X-Claude-Code-Session-Id``, so
``latlab statusline`` and ``latlab tool-timings`` see a session while it runs. When the
proxy stops, each session gets its ``session`` span and the run record is closed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from latlab.runner.agents.claude_code import record_call, tool_span
from latlab.runner.agents.proxy import HOOK_PATH, ProxiedCall, RecordingProxy
from latlab.runner.core.records import RunRecord
from latlab.runner.core.spans import Span
from latlab.runner.results.span_writer import SpanRecorder, SpanWriter
from latlab.runner.results.write import ensure_writable, write_run_record


@dataclass
class LiveSession:
    recorder: SpanRecorder
    root: Span
    last_end: datetime
    calls: int = 0


@dataclass
class LiveRecorder:
    """Writes each proxied call's spans as soon as the call ends."""

    results_dir: Path
    provider: str
    record: RunRecord = field(init=False)
    writer: SpanWriter = field(init=False)
    sessions: dict[str, LiveSession] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from latlab.runner.app.run import new_run_id

        ensure_writable(self.results_dir)
        self.record = RunRecord(new_run_id(), datetime.now(UTC), run_name="proxy")
        self.writer = SpanWriter(self.results_dir, self.record.run_id, batch_rows=1)
        write_run_record(self.results_dir, self.record)

    pending: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def hook(self, event: dict[str, Any]) -> None:
        """A tool hook event: PreToolUse waits for its PostToolUse(Failure) → a tool_call."""
        now, use_id = time.time_ns(), str(event.get("tool_use_id", ""))
        if event.get("hook_event_name") == "PreToolUse":
            self.pending[use_id] = (now, event)
            return
        if use_id not in self.pending:
            return
        pre = self.pending.pop(use_id)
        at = datetime.fromtimestamp(pre[0] / 1e9, UTC)
        session = self._session(str(event.get("session_id") or "proxy"), at)
        session.recorder.end(tool_span(session.recorder, session.root, pre, (now, event)))
        session.last_end = max(session.last_end, datetime.fromtimestamp(now / 1e9, UTC))

    def __call__(self, call: ProxiedCall) -> None:
        session = self._session(call.client_session or "proxy", call.started_at)
        record_call(session.recorder, session.root, call)
        session.calls += 1
        end = call.started_at + timedelta(milliseconds=call.total_ms or 0.0)
        session.last_end = max(session.last_end, end)

    def _session(self, session_id: str, at: datetime) -> LiveSession:
        if session_id not in self.sessions:
            recorder = SpanRecorder(self.writer, self.record.run_id, session_id,
                                    {"provider": self.provider, "driver": "proxy"})
            root = recorder.start("session", "proxy", "other", started_at=at)
            self.sessions[session_id] = LiveSession(recorder, root, at)
        return self.sessions[session_id]

    def close(self) -> None:
        """Each session's root span (first call to last byte) and the finished run record."""
        for session in self.sessions.values():
            root = session.root
            root.duration_ms = (session.last_end - root.started_at).total_seconds() * 1000
            root.attributes["calls"] = session.calls
            session.recorder.end(root)
        self.writer.flush()
        self.record.status, self.record.ended_at = "finished", datetime.now(UTC)
        write_run_record(self.results_dir, self.record)


async def serve(upstream: str, host: str, port: int, results_dir: Path, provider: str,
                announce: Callable[[str], None]) -> None:
    """Proxy until cancelled (Ctrl-C), then close the sessions and the run."""
    recorder = LiveRecorder(results_dir, provider)
    try:
        async with RecordingProxy(upstream, host, port=port, on_call=recorder,
                                  on_hook=recorder.hook) as proxy:
            settings = write_settings(results_dir, recorder.record.run_id, proxy.base_url)
            announce(f"{proxy.base_url} run {recorder.record.run_id} settings {settings}")
            await asyncio.Event().wait()
    finally:
        recorder.close()


def write_settings(results_dir: Path, run_id: str, base_url: str) -> Path:
    """Claude Code settings for this proxy: http hooks timing every tool call, the statusline."""
    hook = [{"hooks": [{"type": "http", "url": base_url + HOOK_PATH}]}]
    settings = {"hooks": {e: hook for e in ("PreToolUse", "PostToolUse", "PostToolUseFailure")},
                "statusLine": {"type": "command",
                               "command": f"latlab statusline --results {results_dir.resolve()}"}}
    path = results_dir.resolve() / "proxy" / f"{run_id}-settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    return path
