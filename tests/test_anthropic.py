"""The Anthropic provider against the real emulator over loopback: timings, usage, error rows."""

from __future__ import annotations

import socket
import statistics

import pytest
from drive import send_in_turn
from emulators import ITL_MS, TOKENS, TTFB_MS, TTFT_MS
from on_time import assert_on_time

from latlab.providers.anthropic import AnthropicProvider
from latlab.providers.emulator import RunningEmulator
from latlab.providers.http import make_http_client
from latlab.runner.core.protocol import DUMMY_KEY, Provider, RequestSpec
from latlab.runner.core.records import Measurement

# ``emulator``: the shared one of conftest.py (timings in tests/emulators.py)


def spec(stream: bool = True, max_tokens: int = 100, timeout_s: float = 5.0) -> RequestSpec:
    return RequestSpec(model_id="claude-haiku-4-5", max_tokens=max_tokens, stream=stream,
                       messages=[{"role": "user", "content": "count"}], timeout_s=timeout_s)


def send_all(base_url: str, specs: list[RequestSpec], transport: str = "aiohttp",
             reuse: bool = True, headers: dict[str, str] | None = None) -> list[Measurement]:
    def make() -> Provider:
        client = make_http_client(transport, 0, reuse)
        provider = AnthropicProvider(client, base_url, DUMMY_KEY, transport)
        provider.headers.update(headers or {})
        return provider

    return send_in_turn(make, specs)


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_streamed_timings_match_the_fixed_profile(emulator: RunningEmulator,
                                                  transport: str) -> None:
    rows = send_all(emulator.base_url, [spec()] * 6, transport)[1:]  # first opens the connection
    assert all(r.ok for r in rows), rows[0].error_message
    assert_on_time((r.ttfb_ms for r in rows), TTFB_MS, "ttfb")
    assert_on_time((r.ttft_ms for r in rows), TTFT_MS, "ttft")
    gaps = [g for r in rows for g in r.itl_ms]
    assert len(gaps) == 5 * (TOKENS - 1)
    assert abs(statistics.median(gaps) - ITL_MS) < 1, "tokens must not arrive in clumps"
    expected_generation = (TOKENS - 1) * ITL_MS
    assert abs(statistics.median(r.generation_ms or 0 for r in rows) - expected_generation) < 3
    assert rows[0].output_tokens == TOKENS and rows[0].stop_reason == "end_turn"
    assert rows[0].request_id and rows[0].request_id.startswith("req_")
    assert rows[0].output_tps == pytest.approx((TOKENS - 1) / (expected_generation / 1000), rel=0.1)


def test_non_streaming_ttft_is_the_total(emulator: RunningEmulator) -> None:
    (row,) = send_all(emulator.base_url, [spec(stream=False, max_tokens=5)])
    assert row.ok and row.output_tokens == 5 and row.stop_reason == "max_tokens"
    assert row.ttft_ms == row.total_ms
    assert row.total_ms is not None and row.total_ms >= TTFT_MS + 4 * ITL_MS - 1


def test_connection_setup_is_timed_only_on_new_connections(emulator: RunningEmulator) -> None:
    reused = send_all(emulator.base_url, [spec(max_tokens=2)] * 3)
    assert reused[0].new_connection and reused[0].connect_ms is not None
    assert [r.new_connection for r in reused[1:]] == [False, False]
    fresh = send_all(emulator.base_url, [spec(max_tokens=2)] * 3, reuse=False)
    assert all(r.new_connection for r in fresh)
    tls = send_all(emulator.base_url, [spec(max_tokens=2)], transport="httpcore")
    assert tls[0].connect_ms is not None and tls[0].tls_ms is None  # plain http: no TLS


@pytest.mark.parametrize(("fault", "error_type", "status"), [
    ("rate_limited", "rate_limited", 429),
    ("overloaded", "overloaded", 529),
    ("server_error", "server_error", 500),
    ("stream_error", "stream_error", 200),
    ("truncate", "truncated", 200),
    ("disconnect", "connection_reset", None),
])
def test_faults_become_typed_error_rows(emulator: RunningEmulator, fault: str, error_type: str,
                                        status: int | None) -> None:
    (row,) = send_all(emulator.base_url, [spec()], headers={"x-latlab-fault": fault})
    assert row.error_type == error_type, row.error_message
    assert row.status == status
    assert row.error_message
    assert row.total_ms is not None or error_type == "connection_reset"


def test_http_error_keeps_the_request_id(emulator: RunningEmulator) -> None:
    (row,) = send_all(emulator.base_url, [spec()], headers={"x-latlab-fault": "overloaded"})
    assert row.request_id and row.request_id.startswith("req_")
    assert "overloaded_error" in (row.error_message or "")


def test_stall_becomes_a_timeout_row(emulator: RunningEmulator) -> None:
    (row,) = send_all(emulator.base_url, [spec(timeout_s=0.3)],
                      headers={"x-latlab-fault": "stall"})
    assert row.error_type == "timeout"
    assert row.ttfb_ms is not None and row.ttft_ms is None


def test_refused_connection_becomes_a_connect_error_row() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    (row,) = send_all(f"http://127.0.0.1:{port}", [spec(timeout_s=2)])
    assert row.error_type == "connect_error", row.error_message
