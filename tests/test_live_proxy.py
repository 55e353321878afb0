"""``latlab proxy`` as a user runs it: a subprocess in front of the emulator; calls become
spans at once, ``latlab statusline`` shows the running session, Ctrl-C closes it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import pyarrow.parquet as pq

from latlab.providers.emulator import RunningEmulator


def latlab(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_proxy_records_a_live_session(quick_emulator: RunningEmulator, tmp_path: Path) -> None:
    """In front of ``quick_emulator`` (conftest.py: 20 ms to the first token). Its bounds
    are floors (what was planned or slept) and a 5 s ceiling for a 0.2 s tool call: a busy
    machine cannot break them, so the test needs no turn alone."""
    with subprocess.Popen([sys.executable, "-m", "latlab", "proxy", "--upstream",
                           quick_emulator.base_url], cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as proxy:
        run_id = use_proxy(proxy, tmp_path)
    check_spans(tmp_path, run_id)


def use_proxy(proxy: subprocess.Popen[str], tmp_path: Path) -> str:
    try:
        assert proxy.stdout is not None
        url, _, run_id, _, settings = proxy.stdout.readline().split()
        hooks = json.loads(Path(settings).read_text())["hooks"]
        assert hooks["PreToolUse"][0]["hooks"][0]["url"] == url + "/_latlab/hook"
        headers = {"X-Claude-Code-Session-Id": "cc-session-1"}
        with anthropic.Anthropic(base_url=url, api_key="dummy",
                                 default_headers=headers) as client:
            for _ in range(2):
                with client.messages.stream(model="claude-sonnet-4-5", max_tokens=32, messages=[
                        {"role": "user", "content": "hi"}]) as stream:
                    stream.get_final_message()
        tool = {"session_id": "cc-session-1", "tool_name": "Bash", "tool_use_id": "toolu_1",
                "tool_input": {"command": "sleep 0.2"}}
        httpx.post(url + "/_latlab/hook", json={**tool, "hook_event_name": "PreToolUse"})
        time.sleep(0.2)
        httpx.post(url + "/_latlab/hook", json={**tool, "hook_event_name": "PostToolUse"})
        line = latlab("statusline", cwd=tmp_path, stdin=json.dumps(
            {"session_id": "cc-session-1", "model": {"display_name": "Sonnet"}}))
        assert line.returncode == 0, line.stderr
        assert line.stdout.startswith("[D] Sonnet · ") and "TTFT " in line.stdout
        bash = line.stdout.split(" · ")[2].removeprefix("bash ")
        bash_ms = float(bash[:-2]) if bash.endswith("ms") else float(bash[:-1]) * 1000
        assert 190 <= bash_ms < 5000, line.stdout
    finally:
        proxy.send_signal(signal.SIGINT)
        proxy.wait(timeout=30)
    return run_id


def check_spans(tmp_path: Path, run_id: str) -> None:
    spans = [r for f in (tmp_path / "results" / "spans" / run_id).glob("*.parquet")
             for r in pq.read_table(f).to_pylist()]
    kinds = sorted(s["kind"] for s in spans)
    assert kinds == ["http_call", "http_call", "model_call", "model_call", "session",
                     "tool_call"]
    assert {s["session_id"] for s in spans} == {"cc-session-1"}
    (session,) = [s for s in spans if s["kind"] == "session"]
    assert all(s["parent_id"] == session["span_id"] for s in spans if s["kind"] == "model_call")
    assert json.loads(session["attributes"])["calls"] == 2
    assert all(s["ttft_ms"] >= 20 for s in spans if s["kind"] == "model_call")
    done = latlab("tool-timings", "--by", "session", "--format", "json", cwd=tmp_path)
    (row,) = json.loads(done.stdout)
    assert row["driver"] == "proxy" and row["model_calls"] == 2
