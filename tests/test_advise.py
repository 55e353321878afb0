"""The `advice` view and ``latlab advise``: each rule fires on a hand-built cell, with its
figures, and stays silent otherwise.

Run adv001 (grade A TTFT p50 = 500 ms), two requests per cell unless noted:
    anthropic/opus-4-6/long/none/stream    input 2000, no cache reads, ttft 900, total 2000,
                                           20 output tokens -> prompt_caching, smaller_model
    anthropic/haiku-4-5/long/none/stream   input 2000, ttft 300, total 600 -> nothing (fast)
    bedrock/haiku-4-5/long/none/stream     input 100, ttft 900 (+600 ms, +200 %) -> route_direct
    anthropic/haiku-4-5/long/none/block    input 100, ttft = total 1200 -> stream
    anthropic/sonnet-4-5/short/none/stream input 100, ttft 300, a new 40 ms connection on
                                           both + one 30 s timeout -> reuse_clients, raise_timeout
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from latlab.analysis.advise import advise_command
from latlab.analysis.query import open_results
from tests.test_analysis import T0, err, req, write_requests, write_run

RUN = "adv001"
OPUS = "anthropic/opus-4-6/long/none/stream"
HAIKU = "anthropic/haiku-4-5/long/none/stream"
BEDROCK = "bedrock/haiku-4-5/long/none/stream"
BLOCK = "anthropic/haiku-4-5/long/none/block"
SONNET = "anthropic/sonnet-4-5/short/none/stream"


def rows(cell: str, ttft: float, total: float, inputs: int, run: str = RUN, **kw: Any
         ) -> list[dict[str, Any]]:
    provider, model, prompt, _, mode = cell.split("/")
    return [req(run, cell, provider=provider, model=model, prompt=prompt, stream=mode == "stream",
                iteration=i, ttfb_ms=50.0, ttft_ms=ttft, total_ms=total, input_tokens=inputs,
                output_tokens=20, status=200, **kw) for i in range(2)]


def make_advice_results(root: Path) -> Path:
    r = root / "results"
    write_requests(r, RUN, "0000", [
        *rows(OPUS, 900, 2000, 2000), *rows(HAIKU, 300, 600, 2000),
        *rows(BEDROCK, 900, 1200, 100), *rows(BLOCK, 1200, 1200, 100),
        *rows(SONNET, 300, 600, 100, connect_ms=40.0, new_connection=True),
        err(RUN, SONNET, provider="anthropic", model="sonnet-4-5", prompt="short",
            total_ms=30000.0, iteration=2),
    ])
    write_run(r, RUN, T0)
    return r


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    return make_advice_results(tmp_path)


def test_every_rule_with_its_evidence(results: Path) -> None:
    con = open_results(results)
    got = {(rule, cell): evidence for rule, cell, evidence in con.execute(
        "SELECT rule, cell, evidence FROM advice").fetchall()}
    assert got == {
        ("prompt_caching", OPUS):
            "mean input 2000 tokens, 0 cache reads, TTFT p50 900 ms > 500 ms",
        ("smaller_model", OPUS):
            "mean output 20 tokens, total p50 2000 ms; haiku-4-5 in this run: 600 ms",
        ("route_direct", BEDROCK):
            "TTFT p50 +600 ms (+200%) over the direct API; the provider reports 0% of the "
            "client's time",
        ("stream", BLOCK):
            "not streamed: first token = total, p50 1200 ms > 500 ms; "
            "streamed in this run: TTFT p50 300 ms",
        ("reuse_clients", SONNET):
            "2 of 2 requests opened a connection, 40 ms each (7% of the mean total)",
        ("raise_timeout", SONNET): "1 of 3 requests timed out (after up to 30000 ms)",
    }


def test_advise_command(results: Path) -> None:
    out = json.loads(advise_command(results, None, "json"))
    assert [r["rule"] for r in out] == ["prompt_caching", "smaller_model", "route_direct",
                                        "reuse_clients", "stream", "raise_timeout"]
    assert not any("rate-limited" in r["evidence"] or "headroom" in r["evidence"] for r in out)
    assert out[0]["advice"].startswith("cache the prompt prefix")
    assert "prompt_caching" in advise_command(results, [RUN], "table")


def test_no_advice_is_said_plainly(tmp_path: Path) -> None:
    r = tmp_path / "results"
    write_requests(r, "calm01", "0000", rows(HAIKU, 300, 600, 100, run="calm01"))
    write_run(r, "calm01", T0)
    assert advise_command(r, None, "table") == (
        "no advice for run calm01: no rule triggered (rules: prompt_caching, smaller_model, "
        "route_direct, reuse_clients, stream, raise_timeout, rate_limits)")


def limited_rows(run: str, cell: str, remaining: list[int], refused: int,
                 limit: str = "output_tokens", cap: int = 100) -> list[dict[str, Any]]:
    """Answers reporting ``remaining`` of ``cap`` for ``limit`` (its columns), then ``refused``
    429s (rate_limited)."""
    provider, model, prompt, _, mode = cell.split("/")
    common = dict(provider=provider, model=model, prompt=prompt, stream=mode == "stream")
    answered = [req(run, cell, iteration=i, ttfb_ms=50.0, ttft_ms=300.0, total_ms=600.0,
                    input_tokens=100, output_tokens=20, status=200, **common,
                    **{f"ratelimit_{limit}_limit": cap, f"ratelimit_{limit}_remaining": left,
                       "ratelimit_requests_limit": 50, "ratelimit_requests_remaining": 40})
                for i, left in enumerate(remaining)]
    return answered + [err(run, cell, "rate_limited", iteration=len(remaining) + i, **common)
                       for i in range(refused)]


def test_rate_limits_rule_names_the_share_and_the_tightest_limit(tmp_path: Path) -> None:
    r = tmp_path / "results"
    near = "anthropic/haiku-4-5/short/none/block"
    write_requests(r, "rl0001", "0000", [
        *limited_rows("rl0001", HAIKU, [60, 3, 30, 10, 20, 40, 50], refused=1),  # 1 of 8
        *limited_rows("rl0001", near, [50, 8], refused=0),  # 8 % left, nothing refused
        *limited_rows("rl0001", SONNET, [90, 80], refused=0),  # plenty left: silent
        *[err("rl0001", BEDROCK, "rate_limited", provider="bedrock", iteration=i)
          for i in range(2)],  # Bedrock reports no quota: the share alone
        *rows(BEDROCK, 300, 600, 100, run="rl0001"),
    ])
    write_run(r, "rl0001", T0)
    out = {a["cell"]: a for a in json.loads(advise_command(r, None, "json"))
           if a["rule"] == "rate_limits"}
    assert set(out) == {HAIKU, near, BEDROCK}
    assert out[HAIKU]["evidence"] == ("rate-limited 12 % of requests (1 of 8); headroom 3 % at "
                                      "peak (output tokens per minute)")
    assert out[HAIKU]["advice"].startswith("lower the concurrency")
    assert "raise the output tokens per minute limit" in out[HAIKU]["advice"]
    assert out[near]["evidence"] == ("no request rate-limited; headroom 8 % at peak "
                                     "(output tokens per minute)")
    assert out[near]["advice"].startswith("close to the output tokens per minute limit")
    assert out[BEDROCK]["evidence"] == "rate-limited 50 % of requests (2 of 4)"
    assert "higher quota" in out[BEDROCK]["advice"]
