"""Claude Code sessions (``workload=claude_code``): the real CLI, headless, measured from outside.

Per session: a fresh work directory seeded with the task's files, a fresh config directory,
a settings file whose PreToolUse/PostToolUse(/Failure) hooks drop one timestamped file per
tool event, an MCP config for latlab's stdio MCP server, and a recording proxy
(runner/agents/proxy.py) on loopback between the CLI and the upstream (the emulator offline).
Then ``claude -p PROMPT --output-format stream-json --verbose`` runs to the end.

Spans: ``session`` (the CLI's wall time; its result event's duration_ms, duration_api_ms,
num_turns, cost in attributes), one ``model_call`` + ``http_call`` per proxied Messages call
(also a ``requests`` row each), one ``http_call`` per other proxied call (count_tokens, …),
one ``tool_call`` per hook-observed tool call.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latlab.runner.agents.context import SessionContext
from latlab.runner.agents.proxy import ProxiedCall, RecordingProxy, Signer
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.protocol import DUMMY_KEY
from latlab.runner.core.records import Measurement, RequestRow
from latlab.runner.core.spans import Span, category_for_tool
from latlab.runner.core.tasks import Task, load_task
from latlab.runner.engine.cost import cost_usd
from latlab.runner.results.span_writer import SpanRecorder

if TYPE_CHECKING:
    from latlab.runner.engine.plan import PlannedRequest

ROOT = Path(__file__).resolve().parents[2]  # the checkout: .tools/ lies beside conf/
LOCAL_INSTALL = ROOT / ".tools" / "claude-code"
INSTALL_HINT = ("npm install --prefix .tools/claude-code @anthropic-ai/claude-code "
                "(or set LATLAB_CLAUDE_BIN)")
HOOK_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
# Variables of the caller that must not reach the CLI (credentials, other providers' modes).
DROPPED_ENV = ("ANTHROPIC_", "CLAUDE_CODE_USE_", "AWS_", "OTEL_", "CLAUDE_CONFIG_DIR")


def claude_binary() -> str | None:
    """``LATLAB_CLAUDE_BIN``, the project-local npm install, or ``claude`` on PATH."""
    candidates = [os.environ.get("LATLAB_CLAUDE_BIN", ""),
                  str(LOCAL_INSTALL / "node_modules" / ".bin" / "claude")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("claude")


def check_cell(cfg: Mapping[str, Any]) -> None:
    """Claude Code drives Anthropic or Bedrock, and its CLI must be installed."""
    require_claude(cfg)


def require_claude(cfg: Mapping[str, Any]) -> str:
    if cfg["provider"]["kind"] not in ("anthropic", "bedrock"):
        raise ConfigError(f"provider.kind: workload=claude_code drives the Anthropic API or "
                          f"Bedrock, not {cfg['provider']['kind']!r}")
    binary = claude_binary()
    if binary is None:
        raise ConfigError(f"workload.kind: claude_code needs the Claude Code CLI: {INSTALL_HINT}")
    return binary


def hook_command(log_dir: Path) -> str:
    """A shell hook that stamps the wall clock first, then saves the event JSON."""
    return f't=$(date +%s%N); cat > "{log_dir}/$t-$$.json"'


def write_settings(folder: Path, log_dir: Path) -> Path:
    hooks = {event: [{"hooks": [{"type": "command", "command": hook_command(log_dir)}]}]
             for event in HOOK_EVENTS}
    path = folder / "settings.json"
    path.write_text(json.dumps({"hooks": hooks}), encoding="utf-8")
    return path


def write_mcp_config(folder: Path) -> Path:
    server = {"command": sys.executable, "args": ["-m", "latlab.runner.agents.mcp_server"],
              "env": {"PYTHONPATH": str(ROOT)}}
    path = folder / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"latlab": server}}), encoding="utf-8")
    return path


def cli_env(config_dir: Path, proxy_url: str, api_key: str, emulated: bool,
            bedrock_region: str | None = None) -> dict[str, str]:
    """The CLI's environment: the caller's minus credentials, pointed at the proxy. Bedrock:
    Claude Code skips auth and the proxy signs upstream (the CLI never sees AWS keys)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_ENV)}
    env.update(IS_SANDBOX="1", CLAUDE_CONFIG_DIR=str(config_dir), DISABLE_AUTOUPDATER="1")
    if bedrock_region is None:
        env.update(ANTHROPIC_BASE_URL=proxy_url, ANTHROPIC_API_KEY=api_key)
    else:
        env.update(CLAUDE_CODE_USE_BEDROCK="1", ANTHROPIC_BEDROCK_BASE_URL=proxy_url,
                   CLAUDE_CODE_SKIP_BEDROCK_AUTH="1", AWS_REGION=bedrock_region)
    if emulated:  # offline: no traffic that would bypass the base URL
        env.update(CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_TELEMETRY="1",
                   DISABLE_ERROR_REPORTING="1")
    return env


def cli_command(binary: str, task: Task, workdir: Path, folder: Path, log_dir: Path,
                max_turns: int, model: str | None) -> list[str]:
    command = [binary, "-p", task.render_prompt(workdir), "--output-format", "stream-json",
               "--verbose", "--settings", str(write_settings(folder, log_dir)),
               "--mcp-config", str(write_mcp_config(folder)),
               "--dangerously-skip-permissions", "--max-turns", str(max_turns)]
    return command + (["--model", model] if model else [])


def parse_stream(stdout: bytes) -> dict[str, Any]:
    """The CLI's ``system`` init and final ``result`` events from stream-json output."""
    found: dict[str, Any] = {}
    for line in stdout.decode("utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "result":
            found["result"] = event
        elif isinstance(event, dict) and event.get("subtype") == "init":
            found["init"] = event
    return found


def read_hook_events(log_dir: Path) -> list[tuple[int, dict[str, Any]]]:
    """(wall-clock ns when the hook started, event JSON), oldest first."""
    events = []
    for path in log_dir.glob("*.json"):
        try:
            events.append((int(path.name.split("-")[0]), json.loads(path.read_text())))
        except (ValueError, OSError):
            continue
    return sorted(events, key=lambda e: e[0])


async def run_session(owner: SessionContext, planned: PlannedRequest, worker: int,
                      scheduled_ns: int) -> None:
    """One Claude Code session; failures become error spans."""
    session = ClaudeCodeSession(owner, planned, worker, scheduled_ns)
    await session.run()


class ClaudeCodeSession:
    def __init__(self, owner: SessionContext, planned: PlannedRequest, worker: int,
                 scheduled_ns: int) -> None:
        self.owner, self.planned, self.worker = owner, planned, worker
        self.scheduled_ns = scheduled_ns
        self.cfg = planned.cell.config
        self.task = load_task(str(self.cfg["workload"].get("task", "simple")))
        self.spans: SpanRecorder = owner.recorder(planned, "claude_code")
        self.endpoint = owner.endpoints[planned.cell.name]
        self.last_ttft: float | None = None
        self.turns = 0

    async def run(self) -> None:
        root = self.spans.start("session", self.task.name, "other")
        folder = Path(tempfile.mkdtemp(prefix="latlab-claude-"))
        try:
            await self._run_in(root, folder)
        except Exception as exc:  # noqa: BLE001 - inside a sweep a failed session is data
            root.fail(type(exc).__name__, str(exc))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            self.spans.end(root)
            self.owner.note_session(root, self.planned, self.last_ttft)

    async def _run_in(self, root: Span, folder: Path) -> None:
        workdir, config_dir, log_dir = folder / "work", folder / "config", folder / "hooks"
        for d in (workdir, config_dir, log_dir):
            d.mkdir()
        self.task.seed(workdir)
        binary = require_claude(self.cfg)
        model = str(self.cfg["workload"].get("claude_model") or "") or None
        command = cli_command(binary, self.task, workdir, folder, log_dir,
                              int(self.cfg["workload"].get("max_turns", 20)), model)
        region, signer = self._bedrock()
        capture = bool(self.cfg["workload"].get("capture_bodies"))
        async with RecordingProxy(self.endpoint.base_url, signer=signer,
                                  capture_bodies=capture) as proxy:
            env = cli_env(config_dir, proxy.base_url, self.endpoint.api_key or DUMMY_KEY,
                          self.endpoint.emulated, region)
            env["CLAUDE_CODE_MAX_RETRIES"] = str(int(self.cfg["workload"]["retries"]))
            code, out = await self._execute(command, workdir, env)
            root.finish()
            self._record(root, proxy.calls, read_hook_events(log_dir), parse_stream(out), code)

    def _bedrock(self) -> tuple[str | None, Signer | None]:
        """Bedrock cells: the region and a SigV4 signer for the proxy (None, None otherwise)."""
        provider = self.cfg["provider"]
        if provider["kind"] != "bedrock":
            return None, None
        from latlab.providers.bedrock import DUMMY_CREDENTIALS, RequestSigner, region_of

        signer = RequestSigner(self.endpoint.credentials or DUMMY_CREDENTIALS,
                               region_of(provider), self.endpoint.api_key, "aiohttp")
        return region_of(provider), signer.sign

    async def _execute(self, command: list[str], workdir: Path,
                       env: dict[str, str]) -> tuple[int, bytes]:
        timeout = float(self.cfg["workload"].get("tool_timeout_s", 300.0))
        process = await asyncio.create_subprocess_exec(
            *command, cwd=workdir, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise TimeoutError(f"claude did not finish within {timeout:g} s "
                               "(workload.tool_timeout_s)") from None
        self.stderr = err.decode("utf-8", errors="replace")[-500:]
        return process.returncode or 0, out

    def _record(self, root: Span, calls: list[ProxiedCall],
                hooks: list[tuple[int, dict[str, Any]]], stream: dict[str, Any],
                code: int) -> None:
        parent_at = self._turn_spans(root, calls)
        for call in calls:
            self._call_spans(parent_at(call.started_at), call)
        for span in tool_spans(self.spans, parent_at, hooks):
            self.spans.end(span)
        result = stream.get("result") or {}
        keys = ("subtype", "duration_ms", "duration_api_ms", "num_turns", "total_cost_usd",
                "ttft_ms", "stop_reason", "session_id")
        root.attributes.update({f"cli_{k}": result[k] for k in keys if k in result})
        root.attributes["cli_exit_code"] = code
        root.turn = self.turns
        root.model = (stream.get("init") or {}).get("model")
        if code != 0 or result.get("is_error") or not result:
            root.fail(str(result.get("subtype") or "cli_error"),
                      str(result.get("result") or getattr(self, "stderr", ""))[:300])

    def _turn_spans(self, root: Span, calls: list[ProxiedCall]) -> Callable[[datetime], Span]:
        """One turn per main-loop model call (one that offers tools), lasting until the next
        one (the last: until the session ends); returns "the turn running at this instant"."""
        mains = sorted((c for c in calls if c.is_model_call and c.tool_count),
                       key=lambda c: c.t0_ns)
        end = root.started_at + timedelta(milliseconds=root.duration_ms or 0.0)
        turns: list[Span] = []
        for i, call in enumerate(mains):
            until = mains[i + 1].started_at if i + 1 < len(mains) else end
            turn = self.spans.start("turn", f"turn {i + 1}", "other", root, turn=i + 1,
                                    started_at=call.started_at)
            turn.duration_ms = max((until - call.started_at).total_seconds() * 1000, 0.0)
            if call.error_type is not None:
                turn.fail(call.error_type, call.error_message)
            turns.append(self.spans.end(turn))
        self.turns = len(turns)

        def parent_at(at: datetime) -> Span:
            running = [t for t in turns if t.started_at <= at]
            return running[-1] if running else root

        return parent_at

    def _call_spans(self, root: Span, call: ProxiedCall) -> None:
        model_span = record_call(self.spans, root, call)
        if model_span is not None:
            self._write_row(model_span, call)
            self.last_ttft = call.ttft_ms if call.ttft_ms is not None else self.last_ttft

    def _write_row(self, span: Span, call: ProxiedCall) -> None:
        timer = self.owner.timer
        runtime = timer.runtimes[self.planned.cell.name]
        m = proxied_measurement(call)
        context = timer._context(self.planned, runtime, self.worker, call.started_at,
                                 self.scheduled_ns)
        context.update(model_id=call.model or "", stream=call.streaming,
                       cost_usd=cost_usd(m, runtime.prices), session_id=self.spans.session_id,
                       span_id=span.span_id, prompt_label=f"{self.task.name}/claude_code",
                       request_body=call.body)
        timer.writer.add(RequestRow.build(context, m))


def record_call(spans: SpanRecorder, parent: Span, call: ProxiedCall) -> Span | None:
    """Spans of one proxied call: ``http_call``, under a ``model_call`` for Messages/Invoke
    calls (returned, so its ``requests`` row can link to it)."""
    model_span = None
    if call.is_model_call:
        model_span = spans.start("model_call", call.model or "?", "model", parent,
                                 started_at=call.started_at, model=call.model, turn=parent.turn,
                                 streaming=call.streaming)
        _fill(model_span, call)
        model_span.attributes["tools_offered"] = call.tool_count
        spans.end(model_span)
    span = spans.start("http_call", f"{call.method} {call.endpoint}", "http",
                       model_span or parent, started_at=call.started_at, method=call.method,
                       turn=parent.turn, endpoint=call.endpoint, host=call.host,
                       model=call.model, streaming=call.streaming,
                       request_bytes=call.request_bytes, response_bytes=call.response_bytes)
    _fill(span, call)
    spans.end(span)
    return model_span


def _fill(span: Span, call: ProxiedCall) -> None:
    span.duration_ms, span.ttfb_ms, span.ttft_ms = call.total_ms, call.ttfb_ms, call.ttft_ms
    span.http_status, span.request_id = call.status, call.request_id
    span.input_tokens, span.output_tokens = call.input_tokens, call.output_tokens
    if call.error_type is not None:
        span.fail(call.error_type, call.error_message)


def proxied_measurement(call: ProxiedCall) -> Measurement:
    return Measurement(
        ttfb_ms=call.ttfb_ms, ttft_ms=call.ttft_ms, total_ms=call.total_ms,
        generation_ms=None, input_tokens=call.input_tokens, output_tokens=call.output_tokens,
        cache_read_tokens=call.cache_read_tokens, cache_write_tokens=call.cache_write_tokens,
        stop_reason=call.stop_reason, status=call.status, error_type=call.error_type,
        error_message=call.error_message, request_id=call.request_id)


def tool_spans(spans: SpanRecorder, parent_at: Callable[[datetime], Span],
               hooks: list[tuple[int, dict[str, Any]]]) -> list[Span]:
    """Pair PreToolUse with PostToolUse/PostToolUseFailure by ``tool_use_id``."""
    starts: dict[str, tuple[int, dict[str, Any]]] = {}
    out: list[Span] = []
    for t_ns, event in hooks:
        use_id = str(event.get("tool_use_id", ""))
        if event.get("hook_event_name") == "PreToolUse":
            starts[use_id] = (t_ns, event)
        elif use_id in starts:
            pre = starts.pop(use_id)
            parent = parent_at(datetime.fromtimestamp(pre[0] / 1e9, UTC))
            out.append(tool_span(spans, parent, pre, (t_ns, event)))
    return out


def tool_span(spans: SpanRecorder, root: Span, pre: tuple[int, dict[str, Any]],
               post: tuple[int, dict[str, Any]]) -> Span:
    name = str(pre[1].get("tool_name", "?"))
    tool_input = pre[1].get("tool_input") or {}
    command = str(tool_input.get("command", "")) if name == "Bash" else None
    span = spans.start("tool_call", name, category_for_tool(name, command), root,
                       started_at=datetime.fromtimestamp(pre[0] / 1e9, UTC), turn=root.turn,
                       tool_use_id=pre[1].get("tool_use_id"),
                       tool_input_bytes=len(json.dumps(tool_input)),
                       tool_output_bytes=len(json.dumps(post[1].get("tool_response", ""))),
                       attributes={"hook_interval_ms": (post[0] - pre[0]) / 1e6,
                                   **({"command": command[:200]} if command else {})})
    reported = post[1].get("duration_ms")
    span.duration_ms = float(reported) if reported is not None else (post[0] - pre[0]) / 1e6
    if post[1].get("hook_event_name") == "PostToolUseFailure":
        span.fail("tool_error", str(post[1].get("error", "")))
    return span
