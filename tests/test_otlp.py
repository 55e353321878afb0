"""OTLP/HTTP export and the statusline, over the results of one built-in session run; the
export goes to a tiny OTLP receiver started here (a real HTTP server on loopback)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from in_process import latlab_here

from latlab.analysis.statusline import provider_tag, status_line


def latlab(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


pytestmark = pytest.mark.xdist_group("session_run")  # one_session_run once (conftest.py)


@pytest.fixture(scope="module")
def session_run(one_session_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of conftest.py's one built-in session run (workload=session, profile=fast,
    one iteration)."""
    cwd = tmp_path_factory.mktemp("otlp")
    shutil.copytree(one_session_run / "results", cwd / "results")
    return cwd


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.path, self.headers["content-type"], json.loads(body)))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[tuple[str, list[tuple[str, str, dict[str, Any]]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Receiver.received
    server.shutdown()
    server.server_close()


def attrs(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}


def test_export_sends_session_traces_with_genai_attributes(
        session_run: Path, receiver: tuple[str, list[Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    url, received = receiver  # in this process (tests/in_process.py); the next test: the CLI
    done = latlab_here(["otlp-export", "--endpoint", url], capsys, session_run)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("exported 12 spans")
    ((path, ctype, body), (metrics_path, _, metrics)) = received
    assert path == "/v1/traces" and ctype == "application/json"
    assert metrics_path == "/v1/metrics"
    check_metrics(metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"])
    spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"].split(" ")[0], []).append(span)
    assert {k: len(v) for k, v in by_name.items()} == {
        "invoke_agent": 1, "turn": 3, "chat": 3, "POST": 3, "execute_tool": 2}
    (root,) = by_name["invoke_agent"]
    assert len({s["traceId"] for s in spans}) == 1 and len(root["traceId"]) == 32
    ids = {s["spanId"] for s in spans}
    assert all(s.get("parentSpanId") in ids for s in spans if s is not root)
    chat = attrs(by_name["chat"][0])
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.provider.name"] == "anthropic"
    assert chat["gen_ai.request.model"].startswith("claude-haiku-4-5")
    assert int(chat["gen_ai.usage.output_tokens"]) > 0
    assert 0 < chat["gen_ai.response.time_to_first_chunk"] < 1  # seconds
    tools = sorted(attrs(s)["gen_ai.tool.name"] for s in by_name["execute_tool"])
    assert tools == ["Bash", "Write"]
    assert all(int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) for s in spans)


def test_export_to_nowhere_is_one_line_and_exit_2(session_run: Path) -> None:
    done = latlab("otlp-export", "--endpoint", "http://127.0.0.1:9", cwd=session_run)
    assert done.returncode == 2
    assert done.stderr.startswith("latlab: error: --endpoint: cannot export")


def test_statusline_summarises_the_latest_session(session_run: Path) -> None:
    stdin = json.dumps({"session_id": "not-ours", "model": {"display_name": "Haiku 4.5"}})
    done = latlab("statusline", cwd=session_run, stdin=stdin)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("[D] Haiku 4.5 · ") and "\n" not in line
    assert " bash " in line and " mcp " in line and "TTFT " in line
    (row,) = json.loads(latlab("statusline", "--format", "json", cwd=session_run).stdout)
    assert row["bash_ms"] > 0 and row["last_ttft_ms"] > 0


def test_status_line_format_and_tags() -> None:
    row = {"provider": "bedrock", "model": "m", "total_ms": 12_345.0, "bash_ms": 2100.0,
           "cli_ms": 0.0, "mcp_ms": 40.0, "last_ttft_ms": 612.0}
    assert status_line(row, None) == "[BR] m · 12.3s · bash 2.1s · cli 0ms · mcp 40ms · TTFT 612ms"
    assert provider_tag("anthropic") == "[D]" and provider_tag("vertex-eu") == "[VX]"
    assert provider_tag("anthropic", {"CLAUDE_CODE_USE_VERTEX": "1"}) == "[VX]"


def check_metrics(metrics: list[dict[str, Any]]) -> None:
    """The three model calls of the session as GenAI client histograms."""
    by_name = {m["name"]: m for m in metrics}
    assert set(by_name) == {"gen_ai.client.operation.duration",
                            "gen_ai.client.operation.time_to_first_chunk",
                            "gen_ai.client.token.usage"}
    (duration,) = by_name["gen_ai.client.operation.duration"]["histogram"]["dataPoints"]
    assert by_name["gen_ai.client.operation.duration"]["unit"] == "s"
    assert duration["count"] == "3" and sum(int(c) for c in duration["bucketCounts"]) == 3
    assert len(duration["bucketCounts"]) == len(duration["explicitBounds"]) + 1
    assert 0 < duration["min"] <= duration["max"] < 1 and duration["sum"] >= duration["max"]
    assert attrs(duration)["gen_ai.request.model"].startswith("claude-haiku-4-5")
    tokens = by_name["gen_ai.client.token.usage"]["histogram"]["dataPoints"]
    assert sorted(attrs(p)["gen_ai.token.type"] for p in tokens) == ["input", "output"]


def test_metric_buckets() -> None:
    from datetime import UTC, datetime

    from latlab.analysis.otlp import metrics_payload

    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"warmup": False, "provider": "bedrock", "model_id": "m", "error_type": None,
             "started_at": at, "total_ms": ms, "ttft_ms": None, "stream": False,
             "input_tokens": None, "output_tokens": None} for ms in (5.0, 15.0, 15.0, 99_000.0)]
    rows.append({**rows[0], "warmup": True})
    (metric,) = metrics_payload(rows)["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    (point,) = metric["histogram"]["dataPoints"]
    assert point["bucketCounts"][:2] == ["1", "2"] and point["bucketCounts"][-1] == "1"
    assert attrs(point)["gen_ai.provider.name"] == "aws.bedrock" and point["count"] == "4"
