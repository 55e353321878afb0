"""Emulated prompt caching: prefix keys, hit/miss, token counts, TTL, wire shape, TTFT."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from latlab.providers.emulator import start_emulator
from latlab.providers.emulator.profile import EmulatorProfile
from latlab.providers.emulator.prompt_cache import CacheProfile, PromptCache, breakpoints
from latlab.runner.config.prompts import synthetic_text

AUTH = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
MODEL = "claude-sonnet-4-5"
SECOND = 1_000_000_000


def cached_body(system_tokens: int = 2000, question: str = "What is TTFT?",
                ttl: str | None = None, stream: bool = False) -> dict[str, Any]:
    marker: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    system = [{"type": "text", "text": synthetic_text(system_tokens), "cache_control": marker}]
    return {"model": MODEL, "max_tokens": 16, "stream": stream, "system": system,
            "messages": [{"role": "user", "content": question}]}


def cache(**profile: Any) -> PromptCache:
    return PromptCache(CacheProfile.parse(profile or None))


def test_first_request_writes_the_prefix_and_the_next_reads_it() -> None:
    c, body = cache(), cached_body(2000)
    miss = c.lookup(MODEL, body, 0)
    assert (miss.read, miss.write_5m, miss.write_1h) == (0, 2000, 0)
    c.store(miss, available_at_ns=100)
    hit = c.lookup(MODEL, body, 200)
    assert (hit.read, hit.write) == (2000, 0)
    assert c.snapshot() == {"entries": 1, "hits": 1, "writes": 1}


def test_a_different_user_message_still_hits_a_changed_prefix_misses() -> None:
    c = cache()
    c.store(c.lookup(MODEL, cached_body(2000, "first"), 0), 0)
    assert c.lookup(MODEL, cached_body(2000, "another question"), 1).read == 2000
    assert c.lookup(MODEL, cached_body(2001), 2).read == 0  # one more token in the system
    assert c.lookup("claude-haiku-4-5", cached_body(2000), 3).read == 0  # another model


def test_entry_is_readable_only_after_the_first_token_and_until_the_ttl() -> None:
    c, body = cache(ttl_s=300), cached_body(2000)
    c.store(c.lookup(MODEL, body, 0), available_at_ns=SECOND)
    assert c.lookup(MODEL, body, SECOND // 2).read == 0  # concurrent: still being written
    assert c.lookup(MODEL, body, 2 * SECOND).read == 2000  # refreshes: expires at 302 s
    assert c.lookup(MODEL, body, 301 * SECOND).read == 2000  # alive thanks to the refresh
    assert c.lookup(MODEL, body, 602 * SECOND).read == 0  # 301 s unused: expired


def test_one_hour_ttl_is_counted_apart() -> None:
    c, body = cache(), cached_body(2000, ttl="1h")
    usage = c.lookup(MODEL, body, 0)
    assert (usage.write_5m, usage.write_1h) == (0, 2000)
    c.store(usage, 0)
    assert c.lookup(MODEL, body, 3000 * SECOND).read == 2000


def test_prefixes_below_the_model_minimum_are_not_cached() -> None:
    c = cache(min_tokens={"haiku": 4096, "default": 1024})
    assert c.lookup("claude-haiku-4-5", cached_body(2000), 0).write == 0
    assert c.lookup(MODEL, cached_body(2000), 0).write == 2000


def test_two_breakpoints_read_the_longest_live_prefix_and_write_the_rest() -> None:
    c = cache()
    c.store(c.lookup(MODEL, cached_body(2000), 0), 0)
    body = cached_body(2000)
    body["messages"] = [{"role": "user", "content": [
        {"type": "text", "text": synthetic_text(1500), "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "and a question"}]}]
    assert [p.tokens for p in breakpoints(MODEL, body)] == [2000, 3500]
    usage = c.lookup(MODEL, body, 1)
    assert (usage.read, usage.write) == (2000, 1500)


def test_bad_prompt_cache_keys_are_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown keys \['ttl'\]"):
        CacheProfile.parse({"ttl": 5})
    with pytest.raises(ValueError, match="prefill_ms_per_1k_tokens: must be >= 0"):
        CacheProfile.parse({"prefill_ms_per_1k_tokens": -1})


# ---------------------------------------------------------------- over a real socket


def emulator_profile(**prompt_cache: Any) -> EmulatorProfile:
    return EmulatorProfile.from_mapping({
        "name": "cache", "seed": 0,
        "models": {"default": {"ttfb_ms": 5, "ttft_ms": 20, "itl_ms": 1, "output_tokens": 4}},
        "prompt_cache": prompt_cache})


def post(client: httpx.Client, body: dict[str, Any]) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    resp = client.post("/v1/messages", json=body, headers=AUTH)
    return (time.perf_counter() - start) * 1000, resp


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_usage_on_the_wire_is_byte_exact_and_ttft_shrinks_on_a_hit() -> None:
    profile = emulator_profile(prefill_ms_per_1k_tokens=50, cached_ms_per_1k_tokens=5)
    with start_emulator(profile) as emu, httpx.Client(base_url=emu.base_url) as client:
        miss_ms, miss = post(client, cached_body(4000))
        hit_ms, hit = post(client, cached_body(4000))
    assert json.dumps(miss.json()["usage"], separators=(",", ":")) == (
        '{"input_tokens":3,"cache_creation_input_tokens":4000,"cache_read_input_tokens":0,'
        '"cache_creation":{"ephemeral_5m_input_tokens":4000,"ephemeral_1h_input_tokens":0},'
        '"output_tokens":4,"service_tier":"standard"}')
    usage = hit.json()["usage"]
    assert (usage["input_tokens"], usage["cache_creation_input_tokens"],
            usage["cache_read_input_tokens"]) == (3, 0, 4000)
    assert miss_ms > 200 and hit_ms < 120  # 20 + 200 ms prefill vs 20 + 20 ms


def test_streamed_usage_carries_the_cache_counts() -> None:
    with start_emulator(emulator_profile()) as emu, httpx.Client(base_url=emu.base_url) as client:
        post(client, cached_body(2000))
        _, resp = post(client, cached_body(2000, stream=True))
    events = [json.loads(line[6:]) for line in resp.text.splitlines()
              if line.startswith("data: ")]
    start_usage = events[0]["message"]["usage"]
    delta = next(e for e in events if e["type"] == "message_delta")
    assert start_usage["cache_read_input_tokens"] == 2000
    assert start_usage["cache_creation"] == {"ephemeral_5m_input_tokens": 0,
                                             "ephemeral_1h_input_tokens": 0}
    assert list(delta["usage"]) == ["input_tokens", "cache_creation_input_tokens",
                                    "cache_read_input_tokens", "output_tokens"]
    assert delta["usage"]["cache_read_input_tokens"] == 2000


def test_short_ttl_expires_between_requests() -> None:
    with start_emulator(emulator_profile(ttl_s=0.2)) as emu, \
            httpx.Client(base_url=emu.base_url) as client:
        post(client, cached_body(2000))
        time.sleep(0.3)
        _, resp = post(client, cached_body(2000))
    assert resp.json()["usage"]["cache_creation_input_tokens"] == 2000
