"""The OpenAI-compatible provider and the emulator's chat completions routes, over loopback."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from drive import send_in_turn
from emulators import ITL_MS, TOKENS, TTFB_MS, TTFT_MS
from on_time import assert_on_time

from latlab.providers.emulator import RunningEmulator
from latlab.providers.http import make_http_client
from latlab.providers.openai_compat import (
    ChatStream,
    OpenAICompatProvider,
    chat_body,
    chat_url,
    plain_content_delta,
)
from latlab.providers.registry import env_key_endpoint
from latlab.runner.core.errors import CredentialsError
from latlab.runner.core.protocol import DUMMY_KEY, Provider, RequestSpec
from latlab.runner.core.records import Measurement
from latlab.runner.core.timing import StreamClock

MODEL = "claude-haiku-4-5-20251001"  # ``emulator``: the shared one of conftest.py


def spec(stream: bool = True, **extra: object) -> RequestSpec:
    return RequestSpec(model_id=MODEL, max_tokens=100, stream=stream, timeout_s=5.0,
                       messages=[{"role": "user", "content": "count"}], extra_body=dict(extra))


def send_all(base_url: str, specs: list[RequestSpec],
             headers: dict[str, str] | None = None) -> list[Measurement]:
    def make() -> Provider:
        provider = OpenAICompatProvider(make_http_client(), base_url, DUMMY_KEY)
        provider.headers.update(headers or {})
        return provider

    return send_in_turn(make, specs)


def raw_stream(base_url: str, body: dict[str, object]) -> bytes:
    response = httpx.post(base_url + "/v1/chat/completions", json=body, timeout=10,
                          headers={"authorization": "Bearer k"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return response.content


def test_stream_bytes_are_openai_sse(emulator: RunningEmulator) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
            "stream": True, "stream_options": {"include_usage": True}}
    raw = raw_stream(emulator.base_url, body)
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    assert all(e.startswith(b"data: ") and b"\n" not in e for e in events[:-1])
    chunks = [json.loads(e[6:]) for e in events[:-2]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:6]] == [
        " 1", " 2", " 3", " 4", " 5"]
    assert chunks[6]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                       "finish_reason": "length"}
    assert all(c["object"] == "chat.completion.chunk" and c["usage"] is None
               for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    assert b"event:" not in raw and len({c["id"] for c in chunks}) == 1


def test_no_usage_chunk_unless_asked(emulator: RunningEmulator) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    chunks = [json.loads(e[6:]) for e in raw_stream(emulator.base_url, body).split(b"\n\n")[:-2]]
    assert all(c["choices"] for c in chunks) and len(chunks) == 1 + TOKENS + 1


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_streamed_timings_match_the_fixed_profile(emulator: RunningEmulator) -> None:
    rows = send_all(emulator.base_url, [spec()] * 6)[1:]
    assert all(r.ok for r in rows), rows[0].error_message
    assert_on_time((r.ttfb_ms for r in rows), TTFB_MS, "ttfb")
    assert_on_time((r.ttft_ms for r in rows), TTFT_MS, "ttft")
    gaps = [g for r in rows for g in r.itl_ms]
    assert len(gaps) == 5 * (TOKENS - 1) and abs(statistics.median(gaps) - ITL_MS) < 1
    first = rows[0]
    assert first.output_tokens == TOKENS and first.usage_source == "api"
    assert first.input_tokens == 1 and first.stop_reason == "stop"
    assert first.request_id and first.ttft_reasoning_ms is None


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_reasoning_delta_has_its_own_column(emulator: RunningEmulator) -> None:
    rows = send_all(emulator.base_url, [spec(reasoning_effort="low")] * 4)[1:]
    reasoning = TOKENS // 3
    for row in rows:
        assert row.ok and row.ttft_reasoning_ms is not None and row.ttft_ms is not None
        assert_on_time([row.ttft_reasoning_ms], TTFT_MS, "ttft_reasoning")
        assert_on_time([row.ttft_ms], TTFT_MS + reasoning * ITL_MS, "ttft")
        assert len(row.itl_ms) == TOKENS - reasoning - 1 and row.output_tokens == TOKENS


def test_without_usage_chunk_tokens_are_counted_by_the_client(emulator: RunningEmulator) -> None:
    (row,) = send_all(emulator.base_url, [spec(stream_options={"include_usage": False})])
    assert row.ok and row.output_tokens == TOKENS and row.usage_source == "client"
    assert row.input_tokens is None


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_non_streamed_completion(emulator: RunningEmulator) -> None:
    _, row = send_all(emulator.base_url, [spec(stream=False)] * 2)  # the first connects
    assert row.ok and row.output_tokens == TOKENS and row.usage_source == "api"
    assert row.ttft_ms == row.total_ms and row.total_ms is not None
    assert abs(row.total_ms - (TTFT_MS + (TOKENS - 1) * ITL_MS)) < 5


@pytest.mark.parametrize(("fault", "error_type", "status"), [
    ("rate_limited", "rate_limited", 429), ("overloaded", "overloaded", 503),
    ("server_error", "server_error", 500), ("stream_error", "stream_error", 200),
    ("truncate", "truncated", 200), ("disconnect", "connection_reset", None),
])
def test_faults_become_error_rows(emulator: RunningEmulator, fault: str, error_type: str,
                                  status: int | None) -> None:
    (row,) = send_all(emulator.base_url, [spec()], {"x-latlab-fault": fault})
    assert row.error_type == error_type and row.status == status, row.error_message


def test_bad_key_and_bad_model_are_openai_errors(emulator: RunningEmulator) -> None:
    url = emulator.base_url + "/v1/chat/completions"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    denied = httpx.post(url, json=body)
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    bad = httpx.post(url, json={"model": MODEL, "messages": []},
                     headers={"authorization": "Bearer k"})
    assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]


def test_openai_sdk_parses_the_emulator_stream(emulator: RunningEmulator) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=emulator.base_url + "/v1", api_key="k", max_retries=0)
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=100,
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(f" {i + 1}" for i in range(TOKENS))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == TOKENS
    whole = client.chat.completions.create(model=MODEL, max_tokens=100,
                                           messages=[{"role": "user", "content": "hi"}])
    assert whole.choices[0].message.content == text and whole.usage is not None
    assert whole.usage.completion_tokens == TOKENS
    client.close()


TOKEN_CHUNK = (b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
               b'"choices":[{"index":0,"delta":{"content":" 2"},"logprobs":null,'
               b'"finish_reason":null}],"usage":null}')
CHUNKS = [
    TOKEN_CHUNK, b'{"choices":[{"delta":{"content":"\\""}}]}',
    b'{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
    b'{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}',
    b'{"choices":[{"delta":{"content":"x","reasoning_content":"y"}}]}',
    b'{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":9}}',
    b'{"choices":[{"delta":{"content":"x"}}],"usage": {"completion_tokens":9}}',
    b'{"choices":[{"delta":{"content":"x"}},{"delta":{"content":"y"}}]}',
    b'{"choices":[{"delta":{"content":"x","tool_calls":[]}}],"error":{"type":"t"}}',
    b'{"choices":[{"delta":{"content":"say \\"error\\": no"}}]}',
]


@pytest.mark.parametrize("data", CHUNKS)
def test_chunks_read_from_bytes_agree_with_json(data: bytes) -> None:
    """The byte-level shortcut concludes what parsing the chunk would, or leaves it to JSON."""
    fast, parsed = (ChatStream(StreamClock(), Measurement()) for _ in range(2))
    fast.feed(b"data: " + data + b"\n\n", 7)
    parsed.handle(json.loads(data), 7)
    assert (fast.deltas, fast.clock.token_arrivals, fast.measurement, fast.finished) == (
        parsed.deltas, parsed.clock.token_arrivals, parsed.measurement, parsed.finished)
    assert plain_content_delta(TOKEN_CHUNK) and not plain_content_delta(CHUNKS[2])


@pytest.mark.parametrize("content", [b'" 3"', b'""', b'"a\\"b"', b'"\\\\"',
                                     b'"x","reasoning_content":"y"', b'"x","tool_calls":[]'])
def test_a_chunk_like_the_streams_first_agrees_with_json(content: bytes) -> None:
    """After a plain chunk, one with the same bytes around its content string."""
    chunks = [TOKEN_CHUNK, TOKEN_CHUNK.replace(b'" 2"', content)]
    fast, parsed = (ChatStream(StreamClock(), Measurement()) for _ in range(2))
    for arrival, data in enumerate(chunks):
        fast.feed(b"data: " + data + b"\n\n", arrival)
        parsed.handle(json.loads(data), arrival)
    assert fast.template[0] and (fast.deltas, fast.clock.token_arrivals, fast.measurement) == (
        parsed.deltas, parsed.clock.token_arrivals, parsed.measurement)


def test_body_and_url() -> None:
    body = chat_body(RequestSpec(model_id="m", messages=[{"role": "user", "content": "q"}],
                                 max_tokens=7, stream=True, timeout_s=1, system="be brief"))
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 7
    assert chat_url("http://h:1") == chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"


def test_missing_key_fails_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = {"name": "openai_compat", "kind": "openai_compat", "api_key_env": "OPENAI_API_KEY",
           "base_url": "https://api.openai.com"}
    with pytest.raises(CredentialsError, match="OPENAI_API_KEY"):
        env_key_endpoint(cfg, None)


def test_run_without_key_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run([sys.executable, "-m", "latlab", "run", "provider=openai_compat"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "OPENAI_API_KEY" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
