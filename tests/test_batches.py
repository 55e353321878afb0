"""Batches: config checks, the routing verdict, the client-side cache, scripted replies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from in_process import latlab_here
from result_files import request_rows

from latlab.providers.emulator import start_emulator
from latlab.providers.emulator.profile import EmulatorProfile
from latlab.providers.emulator.replies import parse_replies, reply_tokens
from latlab.runner.core.errors import ConfigError
from latlab.runner.engine.batches import build_batch, route_of
from latlab.runner.engine.semantic_cache import ClientCache, Entry, normalise

BASE: dict[str, Any] = {"provider": {"name": "emulator", "kind": "anthropic"},
                        "model": {"name": "sonnet-4-5"}, "pricing": {}}


def cfg(**batch: Any) -> dict[str, Any]:
    return {**BASE, "batch": {"name": "t", **batch}}


def test_no_batch_is_none_and_a_batch_resolves_its_models() -> None:
    assert build_batch(cfg(kind="none")) is None
    batch = build_batch(cfg(kind="fallback", mode="retry", fallback_model="haiku-4-5"))
    assert batch is not None and batch.models["fallback_model"].model_id.startswith(
        "claude-haiku-4-5")
    assert batch.cell_model.name == "sonnet-4-5"


@pytest.mark.parametrize(("batch", "message"), [
    ({"kind": "juggle"}, "batch.kind: unknown kind 'juggle'"),
    ({"kind": "parallel", "mode": "sideways"}, "batch.mode: 'sideways' is not a mode of parallel"),
    ({"kind": "routing", "mode": "routed", "small_model": "tiny-1", "large_model": "opus-4-6"},
     "batch: unknown model 'tiny-1'"),
])
def test_bad_batch_config_is_a_clear_error(batch: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_batch(cfg(**batch))


@pytest.mark.parametrize(("answer", "route"), [
    (" small", "small"), ("Small.", "small"), (" large", "large"), (" 1 2 3", "large"),
    (None, "large"), ("small or large", "large"),
])
def test_route_is_small_only_when_the_classifier_says_so(answer: str | None,
                                                         route: str) -> None:
    assert route_of(answer) == route


def test_exact_cache_matches_normalised_text_only() -> None:
    cache = ClientCache("exact", {})
    cache.store(normalise("How do I reset my password?"), Entry("reset", None))
    assert cache.lookup(normalise("  how do I reset my PASSWORD "), None) is not None
    assert cache.lookup(normalise("How do I reset my username?"), None) is None


def test_cache_drops_the_oldest_entries_beyond_its_size() -> None:
    cache = ClientCache("exact", {"max_entries": 2})
    for text in ("a", "b", "c"):
        cache.store(text, Entry(text, None))
    assert list(cache.entries) == ["b", "c"]


def test_scripted_replies_first_matching_rule_wins() -> None:
    rules = parse_replies([{"contains": ["small or large", "design"], "text": "large"},
                           {"contains": "small or large", "text": "small"}])
    body = {"messages": [{"role": "user", "content": "Reply small or large: Design a cache"}]}
    assert reply_tokens(rules, body) == (" large",)
    body = {"messages": [{"role": "user", "content": "Reply small or large: hi"}]}
    assert reply_tokens(rules, body) == (" small",)
    assert reply_tokens(rules, {"messages": [{"role": "user", "content": "hi"}]}) is None
    with pytest.raises(ValueError, match=r"replies\[0\]"):
        parse_replies([{"contains": "x"}])


def test_scripted_reply_on_the_wire() -> None:
    profile = EmulatorProfile.from_mapping({
        "name": "r", "models": {"default": {"ttfb_ms": 1, "ttft_ms": 2, "itl_ms": 1,
                                            "output_tokens": 9}},
        "replies": [{"contains": "weather", "text": "sunny and warm"}]})
    body = {"model": "m", "max_tokens": 50, "messages": [{"role": "user",
                                                          "content": "The weather?"}]}
    with start_emulator(profile) as emu:
        resp = httpx.post(f"{emu.base_url}/v1/messages", json=body,
                          headers={"x-api-key": "k"})
    message = resp.json()
    assert message["content"][0]["text"] == " sunny and warm"
    assert message["usage"]["output_tokens"] == 3 and message["stop_reason"] == "end_turn"


def test_a_primary_attempt_over_the_latency_budget_falls_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """budget_s 10 ms: every Sonnet attempt (≈ 60 ms) times out and Haiku answers."""
    done = latlab_here(["run", "experiment=fallback", "profile=fast", "workload.warmup=0",
                        "workload.iterations=3", "workload.concurrency=1",
                        "++matrix.batch.mode=[fallback]", "batch.budget_s=0.01"], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = sorted(request_rows(tmp_path / "results"), key=lambda r: (r["batch_id"],
                                                                     r["batch_step"]))
    assert [(r["batch_role"], r["model"], r["error_type"]) for r in rows] == [
        ("primary", "sonnet-4-5", "timeout"), ("fallback", "haiku-4-5", None)] * 3
