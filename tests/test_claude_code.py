"""Real Claude Code sessions on the emulator: the CLI from npm, headless, through latlab's
recording proxy, with hook-timed tool calls. Slow (a Node.js CLI per session)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from result_files import request_rows

from latlab.runner.agents.claude_code import (
    LOCAL_INSTALL,
    claude_binary,
    hook_command,
    read_hook_events,
    tool_spans,
)
from latlab.runner.results.span_writer import SpanRecorder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def claude() -> str:
    """The CLI: already installed, or installed now from npm (skip only without node/npm)."""
    found = claude_binary()
    if found is not None:
        return found
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js/npm not installed: cannot install the Claude Code CLI")
    LOCAL_INSTALL.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--prefix", str(LOCAL_INSTALL), "--no-audit", "--no-fund",
                    "@anthropic-ai/claude-code"], check=True, capture_output=True, timeout=900)
    found = claude_binary()
    assert found is not None, "npm install did not provide the claude CLI"
    return found


def span_rows(results: Path) -> list[dict[str, Any]]:
    return [r for f in sorted((results / "spans").glob("*/*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def test_claude_code_session_on_the_emulator(claude: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "latlab", "run", "workload=claude_code", "profile=fast",
         "workload.task=medium"], cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    spans = span_rows(tmp_path / "results")
    (session,) = [s for s in spans if s["kind"] == "session"]
    attributes = json.loads(session["attributes"])
    assert session["status"] == "ok", (session["error_message"], attributes)
    assert attributes["cli_subtype"] == "success" and attributes["cli_duration_ms"] > 0
    # every tool call of the script ran, in Claude Code, and was timed by the hooks
    tools = [s for s in spans if s["kind"] == "tool_call"]
    assert [s["name"] for s in sorted(tools, key=lambda s: s["started_at"])] == [
        "Write", "Write", "Bash", "mcp__latlab__file_stats", "Edit", "Bash", "Read"]
    assert all(s["status"] == "ok" and s["duration_ms"] > 0 for s in tools)
    # every proxied call is a span; every Messages call a model_call with a requests row
    http = [s for s in spans if s["kind"] == "http_call"]
    models = [s for s in spans if s["kind"] == "model_call"]
    assert Counter(s["endpoint"] for s in http)["/v1/messages"] == len(models)
    main_loop = [m for m in models if json.loads(m["attributes"])["tools_offered"] > 0]
    assert len(main_loop) == 6  # five scripted tool turns and the closing turn
    assert all(m["status"] == "ok" and m["ttft_ms"] > 0 and m["request_id"] for m in models)
    rows = request_rows(tmp_path / "results")
    assert sorted(r["span_id"] for r in rows) == sorted(m["span_id"] for m in models)
    # one turn per main-loop call; each tool call hangs under the turn whose call asked for it
    turns = {s["span_id"]: s for s in spans if s["kind"] == "turn"}
    assert len(turns) == 6 and session["turn"] == 6
    assert [turns[t["parent_id"]]["turn"] for t in sorted(tools, key=lambda s: s["started_at"])
            ] == [1, 1, 2, 3, 4, 5, 5]
    assert all(turns[m["parent_id"]]["turn"] == m["turn"] for m in main_loop)
    # the CLI's own account beside the proxy's: it spends at least the proxied time in API calls
    cli = subprocess.run([sys.executable, "-m", "latlab", "tool-timings", "--by", "cli",
                          "--format", "json"], cwd=tmp_path, capture_output=True, text=True)
    (row,) = json.loads(cli.stdout)
    assert row["model_calls"] == len(models) and row["cli_duration_api_ms"] > 0
    assert row["cli_duration_api_ms"] > 0.9 * row["proxy_model_ms"]
    assert row["cli_duration_ms"] < row["total_ms"]


def test_hooks_pair_by_tool_use_id(tmp_path: Path) -> None:
    recorder = SpanRecorder(None, "run", "session")
    root = recorder.start("session", "t", "other")
    pre = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "a",
           "tool_input": {"command": "git status"}}
    post = {**pre, "hook_event_name": "PostToolUseFailure", "error": "Exit code 1"}
    other = {"hook_event_name": "PreToolUse", "tool_name": "Read", "tool_use_id": "b"}
    (span,) = tool_spans(recorder, lambda at: root, [
        (1_000_000_000, pre), (1_500_000_000, other), (3_000_000_000, post)])
    assert (span.name, span.category, span.duration_ms) == ("Bash", "cli", 2000.0)
    assert span.status == "error" and span.error_message == "Exit code 1"


def test_hook_command_saves_the_event_under_its_start_time(tmp_path: Path) -> None:
    before = time.time_ns()
    subprocess.run(["sh", "-c", hook_command(tmp_path)], input='{"tool_use_id": "x"}',
                   text=True, check=True)
    ((t_ns, event),) = read_hook_events(tmp_path)
    assert event == {"tool_use_id": "x"} and before <= t_ns <= time.time_ns()


def test_claude_code_on_bedrock_is_signed_by_the_proxy(claude: str, tmp_path: Path) -> None:
    """Claude Code in Bedrock mode skips auth; the proxy signs with SigV4 (the emulator's
    Bedrock routes reject unsigned requests) and reads TTFT from the event-stream frames."""
    done = subprocess.run(
        [sys.executable, "-m", "latlab", "run", "workload=claude_code", "profile=fast",
         "provider=bedrock", "emulate=true"], cwd=tmp_path, capture_output=True, text=True,
        timeout=400)
    assert done.returncode == 0, done.stderr
    spans = span_rows(tmp_path / "results")
    (session,) = [s for s in spans if s["kind"] == "session"]
    assert session["status"] == "ok", session["error_message"]
    models = [s for s in spans if s["kind"] == "model_call"]
    assert len(models) == 3 and all(m["name"].startswith("us.anthropic.") for m in models)
    http = {s["parent_id"]: s for s in spans if s["kind"] == "http_call"}
    for model in models:
        call = http[model["span_id"]]
        assert call["endpoint"] == "/model/{modelId}/invoke-with-response-stream"
        assert call["http_status"] == 200 and 0 < call["ttft_ms"] <= call["duration_ms"]
        assert call["output_tokens"] > 0 and call["request_id"]
    assert sorted(s["name"] for s in spans if s["kind"] == "tool_call") == ["Bash", "Write"]


def test_claude_code_against_a_failing_upstream_ends_with_error_spans(claude: str,
                                                                      tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "latlab", "run", "workload=claude_code", "profile=fast",
         "profile.faults.error_rate=1.0", "workload.retries=0"], cwd=tmp_path,
        capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    spans = span_rows(tmp_path / "results")
    (session,) = [s for s in spans if s["kind"] == "session"]
    assert session["status"] == "error"
    models = [s for s in spans if s["kind"] == "model_call"]
    assert models and all(m["status"] == "error" and m["http_status"] == 529 for m in models)


def test_claude_code_behind_latlab_proxy_live(claude: str, tmp_path: Path) -> None:
    """A Claude Code session driven outside latlab, through ``latlab proxy`` and the settings
    it writes (http hooks): calls and tool calls land in one live session, by the CLI's id."""
    from latlab.providers.emulator import EmulatorProfile, start_emulator
    from latlab.runner.agents.claude_code import cli_env
    from latlab.runner.core.tasks import load_task

    work, config = tmp_path / "work", tmp_path / "config"
    work.mkdir(), config.mkdir()
    with start_emulator(EmulatorProfile.fixed(5, 20, 2, 10)) as emulator, subprocess.Popen(
            [sys.executable, "-m", "latlab", "proxy", "--upstream", emulator.base_url],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proxy:
        try:
            assert proxy.stdout is not None
            url, _, run_id, _, settings = proxy.stdout.readline().split()
            done = subprocess.run(
                [claude, "-p", load_task("simple").render_prompt(work), "--output-format", "json",
                 "--settings", settings, "--dangerously-skip-permissions"], cwd=work,
                env=cli_env(config, url, "dummy", True), capture_output=True, text=True,
                timeout=300)
            assert done.stdout, done.stderr[-2000:]
            result = json.loads(done.stdout)
            line = subprocess.run(
                [sys.executable, "-m", "latlab", "statusline"], cwd=tmp_path,
                input=json.dumps({"session_id": result["session_id"]}), capture_output=True,
                text=True, timeout=60).stdout
        finally:
            proxy.send_signal(signal.SIGINT)
            proxy.wait(timeout=30)
    assert result["subtype"] == "success", result
    assert line.startswith("[D] ") and " bash 0ms" not in line and "TTFT " in line, line
    every = span_rows(tmp_path / "results")
    assert {s["run_id"] for s in every} == {run_id}
    # calls without the CLI's session header (its HEAD / probe) stay in session "proxy"
    assert {s["name"] for s in every if s["session_id"] == "proxy"} <= {"HEAD /", "proxy"}
    spans = [s for s in every if s["session_id"] == result["session_id"]]
    assert sorted(s["name"] for s in spans if s["kind"] == "tool_call") == ["Bash", "Write"]
    assert len([s for s in spans if s["kind"] == "model_call"]) == 3
