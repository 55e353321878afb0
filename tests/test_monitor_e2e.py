"""latlab monitor end to end, through real sockets and processes: a real Prometheus scraping
/metrics; an emulator outage and a slow-TTFT fault window making the fast-burn alert fire and
resolve (`latlab alerts` and a local Alertmanager-style webhook receiver); promtool on the
shipped rules. Windows are scaled down (slo.objectives.window_scale) so this takes seconds."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.result_files import request_rows

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "docs" / "monitoring" / "prometheus-rules.yml"
PROBE = ["experiment=probe", "profile=fast", "workload.iterations=1", "matrix.model=[haiku-4-5]"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def get(url: str, accept: str | None = None) -> str:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())


@contextmanager
def process(args: list[str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(args, cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class Lines:
    """A child's output lines, read in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: self.lines.extend(stream), daemon=True).start()

    def find(self, prefix: str) -> str | None:
        return next((x for x in list(self.lines) if x.startswith(prefix)), None)


class Emulator:
    """``python -m latlab.providers.emulator`` on a fixed port, stopped and started at will."""

    def __init__(self, port: int, cwd: Path) -> None:
        self.port, self.cwd = port, cwd
        self.proc: subprocess.Popen[str] | None = None

    def start(self, *flags: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "latlab.providers.emulator", "--port", str(self.port),
             "--profile", "fast", *flags], cwd=self.cwd, text=True, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().startswith("http://127.0.0.1:")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local Alertmanager-webhook receiver: every JSON body posted to it."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers["Content-Length"])
            bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


def alerts_now(cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "latlab", "alerts", "--monitor", "probe"],
                          cwd=cwd, text=True, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def webhook_states(bodies: list[dict[str, Any]], objective: str) -> dict[str, list[str]]:
    """cell -> the fast-burn alert's states posted for ``objective``, in order."""
    out: dict[str, list[str]] = {}
    for alert in (a for b in list(bodies) for a in b["alerts"]):
        labels = alert["labels"]
        if (labels["alertname"], labels["objective"]) == ("LatlabBurnRate_fast_burn", objective):
            out.setdefault(labels["cell"], []).append(alert["status"])
    return out


def rounds_seen(lines: Lines) -> int:
    return sum(x.startswith("round ") and " requests" in x for x in list(lines.lines))


def every_cell(bodies: list[dict[str, Any]], objective: str, state: str) -> Callable[[], bool]:
    """True once the last posted state of the alert is ``state`` for both cells."""
    def check() -> bool:
        last = {cell: seen[-1] for cell, seen in webhook_states(bodies, objective).items()}
        return len(last) == 2 and set(last.values()) == {state}
    return check


@pytest.mark.slow
def test_outage_and_slow_window_fire_then_resolve_the_fast_burn_alert(tmp_path: Path) -> None:
    port = free_port()
    # windows × 0.03: 1 h -> 108 s, 5 m -> 9 s (a round, a child process, takes ~2-3 s)
    monitor = [sys.executable, "-m", "latlab", "monitor", *PROBE, "provider.emulate=false",
               f"provider.base_url=http://127.0.0.1:{port}", "slo.objectives.window_scale=0.03",
               "monitor.every=0.3", "monitor.max_rps=100", "workload.timeout_s=5"]
    emu = Emulator(port, tmp_path)
    with receiver() as (hook, bodies):
        emu.start()
        try:
            with process([*monitor, "--webhook", hook], tmp_path) as proc:
                lines = Lines(proc)
                wait_until(lambda: rounds_seen(lines) >= 2, 60, "two good rounds")
                assert bodies == []
                emu.stop()  # the outage: rounds of connection errors
                wait_until(every_cell(bodies, "errors", "firing"), 60, "errors firing")
                out = alerts_now(tmp_path)
                assert any(x.startswith("FIRING fast_burn (page)") and " errors " in x
                           for x in out.splitlines()), out
                emu.start("--ttft-ms", "1100")  # back, but every first token is slow
                wait_until(every_cell(bodies, "ttft", "firing"), 60, "ttft firing")
                wait_until(every_cell(bodies, "errors", "resolved"), 60, "errors resolved")
                emu.stop()
                emu.start()  # normal again
                wait_until(every_cell(bodies, "ttft", "resolved"), 60, "ttft resolved")
                assert not any(x.startswith("FIRING fast_burn")
                               for x in alerts_now(tmp_path).splitlines())
                assert proc.poll() is None  # it went on through all of it
        finally:
            emu.stop()
    # ttft: once (no flapping); errors: the outage, and maybe the restart after the slow window
    assert list(webhook_states(bodies, "ttft").values()) == [["firing", "resolved"]] * 2
    for seen in webhook_states(bodies, "errors").values():
        assert seen[:2] == ["firing", "resolved"] and seen[-1] == "resolved"
        assert all(a != b for a, b in zip(seen, seen[1:], strict=False))
    rows = sorted(request_rows(tmp_path / "results"), key=lambda r: str(r["started_at"]))
    kinds = [r["error_type"] or "ok" for r in rows]
    first_error = kinds.index("connect_error")
    assert set(kinds[:first_error]) == {"ok"} and kinds[-1] == "ok"
    slow = [r["ttft_ms"] for r in rows[first_error:] if r["error_type"] is None][:2]
    assert all(ttft > 1000 for ttft in slow)  # the slow window came after the outage


def free_ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.mark.slow
def test_prometheus_scrapes_the_ttft_histogram_with_its_labels(tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (Debian package `prometheus`; .ci/run installs it)")
    metrics_port, prom_port = free_ports()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: latlab\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n")
    monitor = [sys.executable, "-m", "latlab", "monitor", *PROBE, "monitor.every=0.5",
               "monitor.max_rps=100", "--metrics-port", str(metrics_port),
               "+profile.rate_limits={requests_per_minute:1000}"]
    server = [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
              f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--enable-feature=exemplar-storage",
              f"--web.listen-address=127.0.0.1:{prom_port}"]
    base = f"http://127.0.0.1:{prom_port}/api/v1"
    with process(monitor, tmp_path) as proc, process(server, tmp_path):
        lines = Lines(proc)
        wait_until(lambda: rounds_seen(lines) >= 1, 60, "a round")
        openmetrics = "application/openmetrics-text; version=1.0.0"
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        observed = wait_until(lambda: "latlab_ttft_seconds_bucket{" in get(url), 30,
                              "observations on /metrics")
        exposition = get(url, openmetrics)
        assert observed and "# EOF" in exposition
        assert '# {request_id="' in exposition  # exemplars: OpenMetrics only
        assert "# {" not in get(url)  # the classic text format has none
        assert 'latlab_ratelimit_headroom_ratio{guardrail="none",limit="requests"' in exposition
        assert re.search(r'^latlab_slo_attainment_ratio\{cell="emulator/haiku-4-5/short/none/'
                         r'stream",[^}]*objective="errors"[^}]*\} 1\.0$', exposition, re.M)
        query = urllib.parse.quote('latlab_ttft_seconds_bucket{le="0.05"}')
        result = wait_until(lambda: json.loads(get(f"{base}/query?query={query}"))["data"][
            "result"], 60, "the TTFT histogram in Prometheus")
    labels = {json.dumps(r["metric"], sort_keys=True) for r in result}
    assert {json.loads(x)["prompt"] for x in labels} == {"short", "long"}
    for series in result:
        metric = series["metric"]
        assert {k: metric[k] for k in ("job", "monitor", "provider", "model", "region",
                                       "guardrail")} == {
            "job": "latlab", "monitor": "probe", "provider": "emulator", "model": "haiku-4-5",
            "region": "global", "guardrail": "none"}
        assert float(series["value"][1]) >= 1  # fast profile: TTFT 20 ms < 50 ms


@pytest.mark.optional
def test_promtool_accepts_the_shipped_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; .ci/run installs it)")
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 20 rules found" in done.stdout
