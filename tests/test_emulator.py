"""The emulator over real loopback sockets: wire shape, SDK compatibility, timing, faults."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam
from omegaconf import OmegaConf
from on_time import assert_on_time
from result_files import request_rows

from latlab.providers.emulator import RunningEmulator, start_emulator
from latlab.providers.emulator.cli import add_serve_arguments, load_profile, profile_from_args
from latlab.providers.emulator.profile import FAULT_KINDS, Distribution, EmulatorProfile
from latlab.providers.emulator.state import EmulatorState
from latlab.runner.core.timerfd import timerfd_available

# appended, not prepended: bench/analysis.py must not shadow the analysis package
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
from emulator_process import cpu_seconds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TTFB_MS, TTFT_MS, ITL_MS, TOKENS = 20.0, 60.0, 5.0, 10
AUTH = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
PROMPT = "Count to ten, please."
USER: list[MessageParam] = [{"role": "user", "content": PROMPT}]

Event = tuple[int, str, dict[str, Any]]  # (arrival ns, event name, data)


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorProfile.fixed(TTFB_MS, TTFT_MS, ITL_MS, TOKENS)) as running:
        yield running


@pytest.fixture()
def http(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, timeout=5.0) as client:
        yield client


@pytest.fixture()
def sdk(emu: RunningEmulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=emu.base_url, api_key="test-key") as client:
        yield client


def body(stream: bool = True, max_tokens: int = 100, model: str = "claude-sonnet-4-5") -> Any:
    return {"model": model, "max_tokens": max_tokens, "messages": USER, "stream": stream}


def read_events(resp: httpx.Response, into: list[Event]) -> list[Event]:
    """Split SSE events as bytes arrive, stamping each with its chunk's arrival time."""
    buf = b""
    for chunk in resp.iter_raw():
        arrived = time.perf_counter_ns()
        buf += chunk
        while b"\n\n" in buf:
            raw, buf = buf.split(b"\n\n", 1)
            lines = dict(line.split(": ", 1) for line in raw.decode().split("\n"))
            data = json.loads(lines["data"])
            assert data["type"] == lines["event"]
            into.append((arrived, lines["event"], data))
    return into


# ------------------------------------------------------------------ official SDK


def test_sdk_stream(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=USER) as s:
        msg = s.get_final_message()
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == TOKENS
    assert msg.content[0].type == "text"
    assert msg.content[0].text == "".join(f" {i}" for i in range(1, TOKENS + 1))
    assert msg.id.startswith("msg_")


def test_sdk_non_stream(sdk: anthropic.Anthropic) -> None:
    msg = sdk.messages.create(model="claude-opus-4", max_tokens=100, messages=USER)
    assert (msg.stop_reason, msg.usage.output_tokens) == ("end_turn", TOKENS)
    assert msg.usage.input_tokens == len(PROMPT) // 4
    assert msg.usage.cache_read_input_tokens == 0
    assert msg._request_id is not None and msg._request_id.startswith("req_")


def test_sdk_max_tokens_cap(sdk: anthropic.Anthropic) -> None:
    msg = sdk.messages.create(model="m", max_tokens=3, messages=USER)
    assert (msg.stop_reason, msg.usage.output_tokens) == ("max_tokens", 3)
    with sdk.messages.stream(model="m", max_tokens=4, messages=USER) as s:
        final = s.get_final_message()
    assert (final.stop_reason, final.usage.output_tokens) == ("max_tokens", 4)


@pytest.mark.parametrize(
    ("fault", "exc"),
    [("rate_limited", anthropic.RateLimitError), ("overloaded", anthropic.OverloadedError)],
)
def test_sdk_http_errors(sdk: anthropic.Anthropic, fault: str, exc: type[Exception]) -> None:
    client = sdk.with_options(max_retries=0)
    with pytest.raises(exc) as info:
        client.messages.create(
            model="m", max_tokens=5, messages=USER, extra_headers={"x-latlab-fault": fault}
        )
    assert isinstance(info.value, anthropic.APIStatusError)
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")
    if fault == "overloaded":
        assert isinstance(info.value, anthropic.InternalServerError)


def test_sdk_in_stream_error(sdk: anthropic.Anthropic) -> None:
    headers = {"x-latlab-fault": "stream_error"}
    with pytest.raises(anthropic.APIStatusError) as info:
        with sdk.messages.stream(
            model="m", max_tokens=5, messages=USER, extra_headers=headers
        ) as s:
            s.get_final_message()
    assert info.value.status_code == 200
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "overloaded_error"


# ------------------------------------------------------------------ raw wire + timing


def test_stream_event_sequence(http: httpx.Client) -> None:
    with http.stream("POST", "/v1/messages", json=body(), headers=AUTH) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["request-id"].startswith("req_")
        assert "content-length" not in resp.headers
        events = read_events(resp, [])
    names = [name for _, name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * TOKENS,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    usage = events[0][2]["message"]["usage"]
    assert {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"} <= set(usage)
    final = events[-2][2]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] == TOKENS


def test_bearer_auth_accepted(http: httpx.Client) -> None:
    headers = {"authorization": "Bearer tok", "anthropic-version": "2026-10-21"}
    resp = http.post("/v1/messages", json=body(stream=False, max_tokens=2), headers=headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["content"][0]["type"] == "text"


def test_missing_auth_is_401(http: httpx.Client) -> None:
    resp = http.post("/v1/messages", json=body(stream=False))
    assert resp.status_code == 401
    err = resp.json()
    assert err["type"] == "error"
    assert err["error"]["type"] == "authentication_error"
    assert err["request_id"] == resp.headers["request-id"]


def test_invalid_requests(http: httpx.Client) -> None:
    resp = http.post("/v1/messages", json={"model": "m"}, headers=AUTH)
    assert (resp.status_code, resp.json()["error"]["type"]) == (400, "invalid_request_error")
    resp = http.post("/v1/messages", json=body(), headers={**AUTH, "x-latlab-fault": "bogus"})
    assert resp.status_code == 400 and "bogus" in resp.json()["error"]["message"]


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_stream_timing_matches_profile(emu: RunningEmulator) -> None:
    ttfb_err, ttft_err, itl_err = [], [], []
    with httpx.Client(base_url=emu.base_url, timeout=5.0) as client:
        client.get("/_latlab/health")  # open the keep-alive connection first
        for _ in range(5):
            t_start = time.perf_counter_ns()
            with client.stream("POST", "/v1/messages", json=body(), headers=AUTH) as resp:
                t_headers = time.perf_counter_ns()
                events = read_events(resp, [])
            deltas = [t for t, name, _ in events if name == "content_block_delta"]
            assert len(deltas) == TOKENS
            ttfb_err.append((t_headers - t_start) / 1e6 - TTFB_MS)
            ttft_err.append((deltas[0] - t_start) / 1e6 - TTFT_MS)
            itl_err += [(b - a) / 1e6 - ITL_MS for a, b in zip(deltas, deltas[1:], strict=False)]
    assert_on_time(ttfb_err, 0.0, "ttfb error")
    assert_on_time(ttft_err, 0.0, "ttft error")
    assert abs(statistics.median(itl_err)) < 3.0, itl_err  # a gap: both ends pay the overhead


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_non_stream_arrives_at_last_token(http: httpx.Client) -> None:
    http.get("/_latlab/health")
    elapsed_ms = []
    for _ in range(3):  # the median of three: one slow wake-up of a shared machine is noise
        t_start = time.perf_counter_ns()
        resp = http.post("/v1/messages", json=body(stream=False), headers=AUTH)
        elapsed_ms.append((time.perf_counter_ns() - t_start) / 1e6)
    assert resp.json()["usage"]["output_tokens"] == TOKENS
    expected = TTFT_MS + (TOKENS - 1) * ITL_MS
    assert abs(statistics.median(elapsed_ms) - expected) < 5.0
    assert float(resp.headers["x-latlab-planned-total-ms"]) == pytest.approx(expected)


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        ("rate_limited", 429, "rate_limit_error"),
        ("overloaded", 529, "overloaded_error"),
        ("server_error", 500, "api_error"),
    ],
)
def test_http_faults(http: httpx.Client, fault: str, status: int, error_type: str) -> None:
    resp = http.post("/v1/messages", json=body(), headers={**AUTH, "x-latlab-fault": fault})
    assert resp.status_code == status
    err = resp.json()
    assert err["type"] == "error" and err["error"]["type"] == error_type
    assert err["request_id"] == resp.headers["request-id"]
    assert err["request_id"].startswith("req_")
    if status == 429:
        assert resp.headers["retry-after"] == "1"


def test_fault_stream_error(http: httpx.Client) -> None:
    headers = {**AUTH, "x-latlab-fault": "stream_error"}
    with http.stream("POST", "/v1/messages", json=body(), headers=headers) as resp:
        assert resp.status_code == 200
        events = read_events(resp, [])
    names = [name for _, name, _ in events]
    assert 0 < names.count("content_block_delta") < TOKENS
    assert names[-1] == "error" and "message_stop" not in names
    assert events[-1][2]["error"]["type"] == "overloaded_error"


def test_fault_truncate(http: httpx.Client) -> None:
    events: list[Event] = []
    headers = {**AUTH, "x-latlab-fault": "truncate"}
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream("POST", "/v1/messages", json=body(), headers=headers) as resp:
            assert resp.status_code == 200
            read_events(resp, events)
    names = [name for _, name, _ in events]
    assert names[0] == "message_start" and "content_block_delta" in names
    assert "message_stop" not in names and "message_delta" not in names


def test_fault_disconnect(http: httpx.Client) -> None:
    headers = {**AUTH, "x-latlab-fault": "disconnect"}
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/messages", json=body(), headers=headers)


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_fault_stall(http: httpx.Client) -> None:
    headers = {**AUTH, "x-latlab-fault": "stall"}
    timeout = httpx.Timeout(5.0, read=0.3)
    t_start = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        with http.stream(
            "POST", "/v1/messages", json=body(), headers=headers, timeout=timeout
        ) as resp:
            assert resp.status_code == 200  # headers arrive, then nothing
            resp.read()
    assert time.perf_counter() - t_start < 2.0


def test_fault_none_header_and_random_faults() -> None:
    profile = EmulatorProfile.fixed(1, 2, 0.5, 3, error_rate=1.0, fault_kinds={"overloaded": 1})
    with start_emulator(profile) as emu, httpx.Client(base_url=emu.base_url) as client:
        assert client.post("/v1/messages", json=body(), headers=AUTH).status_code == 529
        forced_ok = {**AUTH, "x-latlab-fault": "none"}
        assert client.post("/v1/messages", json=body(False), headers=forced_ok).status_code == 200
        assert emu.stats()["faults"] == {"overloaded": 1}


# ------------------------------------------------------------------ stats + health


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_stats_report_lag(emu: RunningEmulator, http: httpx.Client) -> None:
    assert http.get("/_latlab/health").json() == {"ok": True}
    http.post("/v1/messages", json=body(max_tokens=3), headers=AUTH)
    stats = http.get("/_latlab/stats").json()
    lag = stats["lag_ms"]
    assert stats["requests"] >= 1 and lag["count"] > 0
    assert 0 <= lag["p50"] <= lag["p99"] <= lag["max"]
    assert lag["p50"] < 2.0  # the server keeps its own schedule on an idle loopback
    assert stats["lag_ms_by_event"]["content_block_delta"]["count"] > 0
    assert emu.stats()["lag_ms"]["count"] >= lag["count"]


# ------------------------------------------------------------------ profiles + CLI


def test_profiles_load_and_match() -> None:
    default = load_profile(None)
    assert default.name == "default"
    assert default.model_profile("claude-3-5-haiku-latest") is default.models["haiku"]
    assert default.model_profile("claude-sonnet-4-5") is default.models["sonnet"]
    assert default.model_profile("something-else") is default.models["default"]
    fast = EmulatorProfile.load(ROOT / "conf" / "profile" / "fast.yaml")
    assert fast.model_profile("x").ttft_ms == Distribution(20, 0)
    cfg = OmegaConf.create(
        {
            "name": "c",
            "seed": 1,
            "models": {
                "default": {
                    "ttfb_ms": {"median": 1, "sigma": 0},
                    "ttft_ms": 2,
                    "itl_ms": 1,
                    "output_tokens": 2,
                }
            },
        }
    )
    assert EmulatorProfile.from_mapping(cfg).models["default"].itl_ms.median == 1


def test_unknown_fault_kind_rejected() -> None:
    data = {
        "models": {"default": {"ttfb_ms": 1, "ttft_ms": 1, "itl_ms": 1, "output_tokens": 1}},
        "faults": {"error_rate": 0.1, "kinds": {"meteor_strike": 1.0}},
    }
    with pytest.raises(ValueError, match="meteor_strike"):
        EmulatorProfile.from_mapping(data)
    assert "stall" in FAULT_KINDS


def test_draws_are_reproducible() -> None:
    profile = load_profile("default").with_overrides(error_rate=0.3)
    req = body()

    def plans() -> list[tuple[Any, ...]]:
        state = EmulatorState(profile)
        out = [state.plan(req, 0, "req_x", None) for _ in range(50)]
        return [(p.fault, p.ttfb_at, p.token_at) for p in out]

    first = plans()
    assert first == plans()
    assert len({p[1] for p in first}) > 1  # lognormal draws vary
    assert 0 < sum(p[0] is not None for p in first) < 50


def test_cli_overrides() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(["--profile", "default", "--ttft-ms", "10", "--seed", "7"])
    profile = profile_from_args(args)
    assert profile.seed == 7
    for mp in profile.models.values():
        assert mp.ttft_ms == Distribution(10.0, 0.0)
        assert mp.ttfb_ms.sigma > 0  # untouched


@contextmanager
def standalone_emulator(args: list[str], watchdog_s: float = 30.0
                        ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m latlab.providers.emulator --port 0 ARGS`` (killed after ``watchdog_s``): the
    process and the base URL it printed first."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "latlab.providers.emulator", "--port", "0", *args]
    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as proc:
        watchdog = threading.Timer(watchdog_s, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            yield proc, proc.stdout.readline().strip()
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            watchdog.cancel()


def test_module_subprocess() -> None:
    with standalone_emulator(["--ttft-ms", "10"], watchdog_s=20.0) as (proc, base_url):
        assert base_url.startswith("http://127.0.0.1:")
        req = body(stream=False, max_tokens=3, model="claude-haiku-4-5")
        with httpx.Client(base_url=base_url, timeout=5.0) as client:
            resp = client.post("/v1/messages", json=req, headers=AUTH)
        assert resp.status_code == 200 and resp.json()["usage"]["output_tokens"] == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_the_embedded_emulator_does_not_starve_the_client(tmp_path: Path) -> None:
    """`latlab run` serves from a thread of its own process: a spinning emulator held the GIL
    and the client read every token late, in one clump (6 streams: TTFT median 64 ms for a
    planned 20 ms). Without the spin it stays within a few ms."""
    done = subprocess.run([sys.executable, "-m", "latlab", "run", "profile=fast",
                           "workload.iterations=30", "workload.warmup=2",
                           "workload.concurrency=6"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [r for r in request_rows(tmp_path / "results") if not r["warmup"]]
    assert len(rows) == 30
    assert statistics.median(r["ttft_ms"] for r in rows) < 20 + 8


def emulator_cpu_share(extra: list[str], streams: int = 8) -> float:
    """Share of a core the standalone emulator uses while serving ``streams`` concurrent
    streams (10 ms pace, 40 tokens), from its own ``/proc/PID/stat``."""
    args = ["--ttfb-ms", "5", "--ttft-ms", "20", "--itl-ms", "10", "--output-tokens", "40"]
    with standalone_emulator([*args, *extra]) as (proc, base_url):
        with httpx.Client(base_url=base_url, timeout=10.0) as client:
            client.get("/_latlab/health")
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        stream_concurrently(base_url, streams, rounds=2)
        return (cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - t0)


def stream_concurrently(base_url: str, streams: int, rounds: int) -> None:
    def one() -> None:
        with httpx.Client(base_url=base_url, timeout=10.0) as client:
            for _ in range(rounds):
                with client.stream("POST", "/v1/messages", json=body(), headers=AUTH) as resp:
                    assert resp.status_code == 200
                    resp.read()

    threads = [threading.Thread(target=one) for _ in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_the_standalone_emulator_does_not_busy_wait() -> None:
    """Each waiting send used to spin its last 1.5 ms: 8 streams at a 10 ms pace kept the
    emulator busy (measured: 52-57 % of a core). Its pacer now sleeps on a timerfd to each
    instant (13-18 %); ``--spin-margin-us 1500`` brings the spin back (52-64 %)."""
    if not timerfd_available():
        pytest.skip("no timerfd here: the pacer spins its 1.5 ms margin")
    quiet = emulator_cpu_share([])
    spinning = emulator_cpu_share(["--spin-margin-us", "1500"])
    assert quiet < 0.35, (quiet, spinning)
    assert spinning > 2 * quiet, (quiet, spinning)
