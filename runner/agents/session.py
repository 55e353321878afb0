"""Agent sessions (``workload=session``): the built-in agent loop over any provider.

One planned (cell, iteration) is one session: a fresh temporary work directory seeded with
the task's files, a local MCP server over stdio, then turns until the model ends its turn or
``workload.max_turns``: model call → each ``tool_use`` executed for real → ``tool_result``s
fed back. Every model call is a ``requests`` row (with ``session_id``/``span_id``) and a
``model_call`` span with an ``http_call`` child; every tool call a ``tool_call`` span; each
turn a ``turn`` span; the whole a ``session`` span (runner/core/spans.py). Failures end the
session with error spans; they never raise.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from latlab.providers.capture import MessageCapture, current_capture
from latlab.runner.agents.context import SessionContext
from latlab.runner.agents.mcp_client import McpClient
from latlab.runner.agents.tools import ToolBox, ToolOutcome
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.records import Measurement, RequestRow
from latlab.runner.core.spans import Span, category_for_tool
from latlab.runner.core.tasks import Task, load_task
from latlab.runner.engine.cost import cost_usd
from latlab.runner.engine.execute import CellRuntime, send_with_retries
from latlab.runner.engine.plan import PlannedRequest
from latlab.runner.engine.traffic import captured_body


def endpoint_template(cfg: Mapping[str, Any]) -> str:
    """The API path of the cell's model call, with the model id as a placeholder."""
    provider = cfg["provider"]
    if provider["kind"] == "bedrock":
        from latlab.providers.bedrock import operation

        op = operation(str(provider.get("api", "invoke_stream")), bool(cfg["workload"]["stream"]))
        return f"/model/{{modelId}}/{op}"
    return "/v1/messages"


def check_cell(cfg: Mapping[str, Any]) -> None:
    """The agent loop reads Anthropic events: ConfigError for a converse API."""
    if str(cfg["provider"].get("api", "messages")).startswith("converse"):
        raise ConfigError("provider.api: the agent loop needs Anthropic events "
                          "(messages, invoke or invoke_stream), not converse")


async def run_session(owner: SessionContext, planned: PlannedRequest, worker: int,
                      scheduled_ns: int) -> None:
    """One session of the built-in agent loop (the driver entry, agents/sessions.py)."""
    await BuiltinSession(owner, planned, worker, scheduled_ns).run()


class BuiltinSession:
    """One run of the built-in agent loop."""

    def __init__(self, owner: SessionContext, planned: PlannedRequest, worker: int,
                 scheduled_ns: int) -> None:
        self.owner, self.planned, self.worker = owner, planned, worker
        self.scheduled_ns = scheduled_ns
        self.cfg = planned.cell.config
        self.runtime: CellRuntime = owner.timer.runtimes[planned.cell.name]
        self.task: Task = load_task(str(self.cfg["workload"].get("task", "simple")))
        self.spans = owner.recorder(planned, "builtin")
        self.spans.context["model"] = self.runtime.specs[0].model_id
        self.last_ttft: float | None = None

    async def run(self) -> None:
        root = self.spans.start("session", self.task.name, "other",
                                attributes={"max_turns": self._max_turns()})
        workdir = Path(tempfile.mkdtemp(prefix="latlab-session-"))
        try:
            self.task.seed(workdir)
            await self._with_tools(root, workdir)
        except Exception as exc:  # noqa: BLE001 - inside a sweep a failed session is data
            root.fail(type(exc).__name__, str(exc))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            self.spans.end(root)
            self.owner.note_session(root, self.planned, self.last_ttft)

    def _max_turns(self) -> int:
        return int(self.cfg["workload"].get("max_turns", 20))

    async def _with_tools(self, root: Span, workdir: Path) -> None:
        timeout = float(self.cfg["workload"].get("tool_timeout_s", 60.0))
        tools = ToolBox(workdir, timeout, McpClient.builtin(workdir))
        try:
            started = time.perf_counter_ns()
            await tools.start()  # not a tool call: the session's setup, kept as an attribute
            root.attributes["mcp_start_ms"] = round((time.perf_counter_ns() - started) / 1e6, 3)
            await self._loop(root, tools, workdir)
        finally:
            await tools.aclose()

    async def _loop(self, root: Span, tools: ToolBox, workdir: Path) -> None:
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": self.task.render_prompt(workdir)}]
        for turn in range(1, self._max_turns() + 1):
            turn_span = self.spans.start("turn", f"turn {turn}", "other", root, turn=turn)
            try:
                done = await self._turn(turn_span, messages, tools)
            finally:
                self.spans.end(turn_span)
            if turn_span.status != "ok":
                root.fail(turn_span.error_type or "error", turn_span.error_message)
                return
            if done:
                root.attributes["stop_reason"], root.turn = "end_turn", turn
                return
        root.attributes["stop_reason"] = "max_turns"
        root.turn = self._max_turns()

    async def _turn(self, turn_span: Span, messages: list[dict[str, Any]],
                    tools: ToolBox) -> bool:
        """One model call and its tool calls; True when the model ended its turn."""
        capture, measurement = await self._model_call(turn_span, messages, tools)
        if measurement.error_type is not None:
            turn_span.fail(measurement.error_type, measurement.error_message)
            return False
        messages.append({"role": "assistant", "content": [  # the API refuses empty text blocks
            b for b in capture.content if b.get("type") and b != {"type": "text", "text": ""}]})
        uses = capture.tool_uses()
        if not uses:
            return True
        results = [await self._tool_call(turn_span, use, tools) for use in uses]
        messages.append({"role": "user", "content": results})
        return False

    async def _model_call(self, turn_span: Span, messages: list[dict[str, Any]],
                          tools: ToolBox) -> tuple[MessageCapture, Measurement]:
        spec = dataclasses.replace(self.runtime.specs[0], messages=list(messages),
                                   extra_body={"tools": tools.definitions()})
        span = self.spans.start("model_call", spec.model_id, "model", turn_span,
                                turn=turn_span.turn, streaming=spec.stream)
        capture, started_at = MessageCapture(), datetime.now(UTC)
        token = current_capture.set(capture)
        try:
            retries = int(self.cfg["workload"]["retries"])
            measurement = await send_with_retries(self.runtime.provider, spec, retries)
        finally:
            current_capture.reset(token)
        self.spans.end(span)
        fill_model_span(span, measurement)
        self.last_ttft = measurement.ttft_ms if measurement.ttft_ms is not None else self.last_ttft
        self._http_span(span, measurement, capture, len(json.dumps(spec.messages)))
        self._write_row(span, measurement, started_at, captured_body(self.cfg["workload"], spec))
        return capture, measurement

    def _http_span(self, parent: Span, m: Measurement, capture: MessageCapture,
                   request_bytes: int) -> None:
        endpoint = self.owner.endpoints[self.planned.cell.name]
        span = self.spans.start(
            "http_call", f"POST {endpoint_template(self.cfg)}", "http", parent,
            turn=parent.turn, method="POST", endpoint=endpoint_template(self.cfg),
            host=urlparse(endpoint.base_url).netloc, http_status=m.status,
            ttfb_ms=m.ttfb_ms, ttft_ms=m.ttft_ms, request_id=m.request_id,
            model=parent.model, streaming=parent.streaming, request_bytes=request_bytes,
            response_bytes=capture.response_bytes or None, started_at=parent.started_at)
        span.duration_ms = m.total_ms
        if m.error_type is not None:
            span.fail(m.error_type, m.error_message)
        self.spans.end(span)

    def _write_row(self, span: Span, m: Measurement, started_at: datetime,
                   body: str | None = None) -> None:
        timer = self.owner.timer
        context = timer._context(self.planned, self.runtime, self.worker, started_at,
                                 self.scheduled_ns)
        context.update(cost_usd=cost_usd(m, self.runtime.prices),
                       session_id=self.spans.session_id, span_id=span.span_id,
                       prompt_label=f"{self.task.name}/turn {span.turn}", request_body=body)
        timer.writer.add(RequestRow.build(context, m))

    async def _tool_call(self, turn_span: Span, use: dict[str, Any],
                         tools: ToolBox) -> dict[str, Any]:
        name, tool_input = str(use.get("name")), dict(use.get("input") or {})
        command = str(tool_input.get("command", "")) if name.lower() == "bash" else None
        span = self.spans.start(
            "tool_call", name, category_for_tool(name, command), turn_span, turn=turn_span.turn,
            tool_use_id=use.get("id"), tool_input_bytes=len(json.dumps(tool_input)),
            attributes={"command": command[:200]} if command else {})
        outcome: ToolOutcome = await tools.run(name, tool_input)
        span.tool_output_bytes, span.exit_code = len(outcome.text.encode()), outcome.exit_code
        if outcome.is_error:
            span.fail("tool_error", outcome.text)
        self.spans.end(span)
        return {"type": "tool_result", "tool_use_id": use.get("id"), "content": outcome.text,
                "is_error": outcome.is_error}


def fill_model_span(span: Span, m: Measurement) -> None:
    """A model_call span's attributes from the provider's measurement."""
    span.input_tokens, span.output_tokens = m.input_tokens, m.output_tokens
    span.ttfb_ms, span.ttft_ms, span.http_status = m.ttfb_ms, m.ttft_ms, m.status
    span.request_id = m.request_id
    span.attributes.update({k: v for k, v in (("stop_reason", m.stop_reason),
                                              ("retries", m.retries)) if v})
    if m.error_type is not None:
        span.fail(m.error_type, m.error_message)
